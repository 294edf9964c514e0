#include <utility>
#include <vector>

// Sorts ascending by moving the smallest remaining element to the front each pass.
std::vector<double> selection_sort(std::vector<double> a) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
        std::size_t m = i;
        for (std::size_t j = i + 1; j < a.size(); ++j) {
            if (a[j] < a[m]) m = j;
        }
        // Place the minimum of a[i..] at position i.
        std::swap(a[i], a[m]);
    }
    return a;
}
