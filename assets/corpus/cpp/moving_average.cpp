#include <vector>

// Mean of every full window of w consecutive values (x.size() - w + 1 outputs).
std::vector<double> moving_average(const std::vector<double>& x, std::size_t w) {
    if (w == 0 || w > x.size()) return {};
    std::vector<double> out;
    out.reserve(x.size() - w + 1);
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        // Slide the window: add the new value, drop the one that left.
        sum += x[i];
        if (i >= w) sum -= x[i - w];
        if (i + 1 >= w) out.push_back(sum / w);
    }
    return out;
}
