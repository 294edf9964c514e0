#include <cmath>
#include <complex>
#include <vector>

// Discrete Fourier transform of a sequence whose length is a power of two.
std::vector<std::complex<double>> fft(const std::vector<std::complex<double>>& x) {
    std::size_t n = x.size();
    if (n <= 1) return x;
    // Split into even- and odd-indexed samples and transform each half.
    std::vector<std::complex<double>> even(n / 2), odd(n / 2);
    for (std::size_t i = 0; i < n / 2; ++i) {
        even[i] = x[2 * i];
        odd[i] = x[2 * i + 1];
    }
    even = fft(even);
    odd = fft(odd);
    const double pi = std::acos(-1.0);
    std::vector<std::complex<double>> out(n);
    for (std::size_t k = 0; k < n / 2; ++k) {
        // Butterfly with twiddle factor exp(-2 pi i k / n).
        std::complex<double> t = std::polar(1.0, -2.0 * pi * k / n) * odd[k];
        out[k] = even[k] + t;
        out[k + n / 2] = even[k] - t;
    }
    return out;
}
