#include <functional>

// Integrates f over [a, b] with an even number n of intervals by parabolic arcs.
double simpson(const std::function<double(double)>& f, double a, double b, int n) {
    if (n % 2 != 0) ++n;
    double h = (b - a) / n;
    double sum = f(a) + f(b);
    // Interior weights alternate 4, 2, 4, ..., 4.
    for (int i = 1; i < n; ++i) sum += (i % 2 == 1 ? 4.0 : 2.0) * f(a + i * h);
    return h / 3 * sum;
}
