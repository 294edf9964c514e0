#include <cmath>
#include <vector>

// Estimates the eigenvalue of largest magnitude by repeated multiplication.
double power_iteration(const std::vector<std::vector<double>>& A,
        int max_iter = 1000, double tol = 1e-10) {
    std::size_t n = A.size();
    std::vector<double> v(n, 1.0), w(n);
    double lambda = 0.0;
    for (int it = 0; it < max_iter; ++it) {
        double vw = 0.0, vv = 0.0, ww = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            w[i] = 0.0;
            for (std::size_t j = 0; j < n; ++j) w[i] += A[i][j] * v[j];
            vw += v[i] * w[i];
            vv += v[i] * v[i];
            ww += w[i] * w[i];
        }
        // Rayleigh quotient, then normalise the new vector.
        double next = vw / vv, norm = std::sqrt(ww);
        for (std::size_t i = 0; i < n; ++i) v[i] = w[i] / norm;
        if (std::fabs(next - lambda) < tol) return next;
        lambda = next;
    }
    return lambda;
}
