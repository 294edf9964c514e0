#include <vector>

// Sorts ascending by sorting each half recursively and merging the results.
std::vector<double> merge_sort(const std::vector<double>& a) {
    if (a.size() <= 1) return a;
    auto mid = a.begin() + a.size() / 2;
    std::vector<double> left = merge_sort(std::vector<double>(a.begin(), mid));
    std::vector<double> right = merge_sort(std::vector<double>(mid, a.end()));
    // Merge: repeatedly take the smaller head; ties favour the left for stability.
    std::vector<double> out;
    out.reserve(a.size());
    std::size_t i = 0, j = 0;
    while (i < left.size() && j < right.size()) {
        out.push_back(left[i] <= right[j] ? left[i++] : right[j++]);
    }
    out.insert(out.end(), left.begin() + i, left.end());
    out.insert(out.end(), right.begin() + j, right.end());
    return out;
}
