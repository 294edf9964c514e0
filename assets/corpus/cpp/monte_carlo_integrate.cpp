#include <functional>
#include <random>

// Estimates the integral of f over [a, b] from n uniform random samples.
double mc_integrate(const std::function<double(double)>& f, double a, double b,
        long n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(a, b);
    double sum = 0.0;
    for (long i = 0; i < n; ++i) sum += f(u(gen));
    // The error shrinks like 1 / sqrt(n).
    return (b - a) * sum / n;
}
