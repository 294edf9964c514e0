#include <functional>

// Integrates f over [a, b] by sampling f at the centre of each of n intervals.
double midpoint_rule(const std::function<double(double)>& f, double a, double b, int n) {
    double h = (b - a) / n;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += f(a + (i + 0.5) * h);
    return h * sum;
}
