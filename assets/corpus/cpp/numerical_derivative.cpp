#include <functional>

// Approximates f'(x) with the symmetric quotient (f(x + h) - f(x - h)) / 2h.
double derivative(const std::function<double(double)>& f, double x, double h = 1e-5) {
    // The error of this formula shrinks like h^2.
    return (f(x + h) - f(x - h)) / (2 * h);
}
