#include <functional>

// Integrates y' = f(t, y) from (t0, y0) to t1 with n classical Runge-Kutta steps.
double rk4(const std::function<double(double, double)>& f,
        double t0, double y0, double t1, int n) {
    double h = (t1 - t0) / n;
    double y = y0;
    for (int i = 0; i < n; ++i) {
        double t = t0 + i * h;
        double k1 = f(t, y);
        double k2 = f(t + h / 2, y + h / 2 * k1);
        double k3 = f(t + h / 2, y + h / 2 * k2);
        double k4 = f(t + h, y + h * k3);
        // Weighted average of the four slopes.
        y += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
    }
    return y;
}
