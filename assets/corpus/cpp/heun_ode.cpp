#include <functional>

// Integrates y' = f(t, y) from (t0, y0) to t1 with n predictor-corrector steps.
double heun(const std::function<double(double, double)>& f,
        double t0, double y0, double t1, int n) {
    double h = (t1 - t0) / n;
    double y = y0;
    for (int i = 0; i < n; ++i) {
        double t = t0 + i * h;
        double k1 = f(t, y);
        // Predict with a full step, then average the two end slopes.
        double k2 = f(t + h, y + h * k1);
        y += h / 2 * (k1 + k2);
    }
    return y;
}
