#include <functional>

// Finds a root of f in [a, b], where f(a) and f(b) must differ in sign.
double bisection(const std::function<double(double)>& f, double a, double b,
        double tol = 1e-10, int max_iter = 200) {
    double fa = f(a);
    for (int i = 0; i < max_iter && b - a > tol; ++i) {
        double m = 0.5 * (a + b);
        double fm = f(m);
        if (fm == 0.0) return m;
        // Keep the half on which the sign changes.
        if ((fa < 0) == (fm < 0)) {
            a = m;
            fa = fm;
        } else {
            b = m;
        }
    }
    return 0.5 * (a + b);
}
