#include <utility>
#include <vector>

// Sorts a[lo..hi] in place, partitioning around the middle element.
void quick_sort(std::vector<double>& a, int lo, int hi) {
    if (lo >= hi) return;
    std::swap(a[(lo + hi) / 2], a[hi]);
    double pivot = a[hi];
    int store = lo;
    for (int i = lo; i < hi; ++i) {
        if (a[i] < pivot) std::swap(a[i], a[store++]);
    }
    std::swap(a[store], a[hi]);
    quick_sort(a, lo, store - 1);
    quick_sort(a, store + 1, hi);
}

// Returns a sorted copy of a in ascending order.
std::vector<double> quick_sort(std::vector<double> a) {
    quick_sort(a, 0, static_cast<int>(a.size()) - 1);
    return a;
}
