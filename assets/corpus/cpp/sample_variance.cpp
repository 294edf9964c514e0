#include <utility>
#include <vector>

// Returns the mean and the unbiased (n - 1) sample variance of x.
std::pair<double, double> mean_variance(const std::vector<double>& x) {
    std::size_t n = x.size();
    if (n == 0) return {0.0, 0.0};
    double mean = 0.0;
    for (double v : x) mean += v;
    mean /= n;
    // Two-pass formula: sum squared deviations from the mean.
    double ss = 0.0;
    for (double v : x) ss += (v - mean) * (v - mean);
    double var = n > 1 ? ss / (n - 1) : 0.0;
    return {mean, var};
}
