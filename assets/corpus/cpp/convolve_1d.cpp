#include <vector>

// y[n] = sum over k of x[k] * h[n - k], giving x.size() + h.size() - 1 outputs.
std::vector<double> convolve(const std::vector<double>& x, const std::vector<double>& h) {
    if (x.empty() || h.empty()) return {};
    std::vector<double> y(x.size() + h.size() - 1, 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
        // Each input sample adds a scaled, shifted copy of h.
        for (std::size_t j = 0; j < h.size(); ++j) y[i + j] += x[i] * h[j];
    }
    return y;
}
