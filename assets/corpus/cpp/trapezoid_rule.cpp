#include <functional>

// Integrates f over [a, b] with n equal intervals, each approximated by a trapezium.
double trapezoid(const std::function<double(double)>& f, double a, double b, int n) {
    double h = (b - a) / n;
    // End points get half weight, interior points full weight.
    double sum = 0.5 * (f(a) + f(b));
    for (int i = 1; i < n; ++i) sum += f(a + i * h);
    return h * sum;
}
