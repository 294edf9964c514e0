#include <vector>

// Returns the index of the first element equal to target, or -1 if there is none.
int linear_search(const std::vector<double>& a, double target) {
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == target) return static_cast<int>(i);
    }
    // Scanned everything without a match.
    return -1;
}
