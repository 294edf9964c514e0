#include <utility>
#include <vector>

// Least-squares line y = a + b x through the points (x[i], y[i]); returns {a, b}.
std::pair<double, double> linear_fit(const std::vector<double>& x,
        const std::vector<double>& y) {
    std::size_t n = x.size();
    double mx = 0.0, my = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0.0, sxx = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    // The slope is cov(x, y) / var(x); the line passes through the means.
    double b = sxy / sxx;
    return {my - b * mx, b};
}
