#include <algorithm>
#include <vector>

// Counts the values of x in k equal-width bins spanning [min, max].
std::vector<int> histogram(const std::vector<double>& x, int k) {
    std::vector<int> counts(k, 0);
    if (x.empty() || k <= 0) return counts;
    auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
    double lo = *lo_it, width = (*hi_it - lo) / k;
    for (double v : x) {
        int i = width > 0 ? static_cast<int>((v - lo) / width) : 0;
        // The maximum belongs to the last bin, not one past it.
        ++counts[std::min(i, k - 1)];
    }
    return counts;
}
