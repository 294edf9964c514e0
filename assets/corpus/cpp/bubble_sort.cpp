#include <utility>
#include <vector>

// Sorts ascending by repeatedly swapping adjacent out-of-order pairs.
std::vector<double> bubble_sort(std::vector<double> a) {
    for (std::size_t end = a.size(); end > 1; --end) {
        bool swapped = false;
        for (std::size_t i = 0; i + 1 < end; ++i) {
            if (a[i] > a[i + 1]) {
                std::swap(a[i], a[i + 1]);
                swapped = true;
            }
        }
        // A pass without swaps means the array is already sorted.
        if (!swapped) break;
    }
    return a;
}
