#include <algorithm>
#include <vector>

// Middle value of x; the mean of the two middle values when the size is even.
double median(std::vector<double> x) {
    if (x.empty()) return 0.0;
    std::sort(x.begin(), x.end());
    std::size_t n = x.size();
    // Odd size: one middle element.
    if (n % 2 == 1) return x[n / 2];
    return 0.5 * (x[n / 2 - 1] + x[n / 2]);
}
