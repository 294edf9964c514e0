#include <cmath>
#include <functional>

// Finds a root of f from x0 and x1, replacing the slope by a finite-difference quotient.
double secant(const std::function<double(double)>& f, double x0, double x1,
        double tol = 1e-12, int max_iter = 100) {
    double f0 = f(x0), f1 = f(x1);
    for (int i = 0; i < max_iter; ++i) {
        if (f1 == f0) break;
        double x2 = x1 - f1 * (x1 - x0) / (f1 - f0);
        x0 = x1;
        f0 = f1;
        x1 = x2;
        f1 = f(x1);
        // Stop when successive iterates agree.
        if (std::fabs(x1 - x0) < tol) break;
    }
    return x1;
}
