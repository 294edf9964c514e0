#include <functional>

// Integrates y' = f(t, y) from (t0, y0) to t1 with n explicit first-order steps.
double euler(const std::function<double(double, double)>& f,
        double t0, double y0, double t1, int n) {
    double h = (t1 - t0) / n;
    double t = t0, y = y0;
    for (int i = 0; i < n; ++i) {
        // Follow the slope at the start of the step.
        y += h * f(t, y);
        t += h;
    }
    return y;
}
