#include <algorithm>
#include <cmath>
#include <vector>

// Solves A x = b by Gauss-Seidel sweeps, reusing each new component at once.
std::vector<double> gauss_seidel(const std::vector<std::vector<double>>& A,
        const std::vector<double>& b, double tol = 1e-10, int max_iter = 1000) {
    std::size_t n = b.size();
    std::vector<double> x(n, 0.0);
    for (int it = 0; it < max_iter; ++it) {
        double change = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            double s = b[i];
            for (std::size_t j = 0; j < n; ++j) {
                if (j != i) s -= A[i][j] * x[j];
            }
            double xi = s / A[i][i];
            change = std::max(change, std::fabs(xi - x[i]));
            x[i] = xi;
        }
        // Stop once no component moved by more than tol.
        if (change < tol) break;
    }
    return x;
}
