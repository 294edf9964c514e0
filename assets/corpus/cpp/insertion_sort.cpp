#include <vector>

// Sorts ascending by inserting each element into the sorted prefix before it.
std::vector<double> insertion_sort(std::vector<double> a) {
    for (std::size_t i = 1; i < a.size(); ++i) {
        double key = a[i];
        std::size_t j = i;
        // Shift larger elements one place to the right.
        while (j > 0 && a[j - 1] > key) {
            a[j] = a[j - 1];
            --j;
        }
        a[j] = key;
    }
    return a;
}
