#include <cmath>
#include <complex>
#include <vector>

// Fourier transform of a real sequence: X[k] = sum_j x[j] exp(-2 pi i j k / n).
std::vector<std::complex<double>> dft(const std::vector<double>& x) {
    std::size_t n = x.size();
    const double pi = std::acos(-1.0);
    std::vector<std::complex<double>> out(n);
    for (std::size_t k = 0; k < n; ++k) {
        // O(n^2): every output sums over every input sample.
        for (std::size_t j = 0; j < n; ++j) {
            out[k] += x[j] * std::polar(1.0, -2.0 * pi * (j * k % n) / n);
        }
    }
    return out;
}
