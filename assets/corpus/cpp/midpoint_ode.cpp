#include <functional>

// Integrates y' = f(t, y) from (t0, y0) to t1 with n explicit midpoint steps.
double midpoint_method(const std::function<double(double, double)>& f,
        double t0, double y0, double t1, int n) {
    double h = (t1 - t0) / n;
    double y = y0;
    for (int i = 0; i < n; ++i) {
        double t = t0 + i * h;
        // Use the slope at the middle of the step.
        double y_mid = y + h / 2 * f(t, y);
        y += h * f(t + h / 2, y_mid);
    }
    return y;
}
