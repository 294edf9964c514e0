#include <cmath>
#include <functional>

// Finds a root of f from x0 by following tangent lines, using the slope function df.
double newton(const std::function<double(double)>& f,
        const std::function<double(double)>& df, double x0,
        double tol = 1e-12, int max_iter = 100) {
    double x = x0;
    for (int i = 0; i < max_iter; ++i) {
        double step = f(x) / df(x);
        x -= step;
        // Stop when the update becomes negligible.
        if (std::fabs(step) < tol) break;
    }
    return x;
}
