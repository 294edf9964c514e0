#include <cmath>
#include <vector>

// Sample standard deviation (n - 1 denominator) computed in a single pass.
double welford_std(const std::vector<double>& x) {
    double mean = 0.0, m2 = 0.0;
    long n = 0;
    for (double v : x) {
        ++n;
        double delta = v - mean;
        mean += delta / n;
        // Uses the deviations from both the old and the updated mean.
        m2 += delta * (v - mean);
    }
    return n > 1 ? std::sqrt(m2 / (n - 1)) : 0.0;
}
