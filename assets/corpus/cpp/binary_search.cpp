#include <vector>

// Returns the index of target in the ascending array a, or -1 if it is absent.
int binary_search(const std::vector<double>& a, double target) {
    int lo = 0, hi = static_cast<int>(a.size()) - 1;
    while (lo <= hi) {
        // Written this way the midpoint cannot overflow.
        int mid = lo + (hi - lo) / 2;
        if (a[mid] == target) return mid;
        if (a[mid] < target) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -1;
}
