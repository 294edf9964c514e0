#include <random>

// Estimates pi from n random points in the unit square, counting those in the quarter circle.
double estimate_pi(long n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    long inside = 0;
    for (long i = 0; i < n; ++i) {
        double x = u(gen), y = u(gen);
        if (x * x + y * y <= 1.0) ++inside;
    }
    // The quarter circle covers pi / 4 of the square.
    return 4.0 * inside / n;
}
