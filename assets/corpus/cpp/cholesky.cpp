#include <cmath>
#include <vector>

// Returns the lower triangular L with A = L L^T for symmetric positive definite A.
std::vector<std::vector<double>> cholesky(const std::vector<std::vector<double>>& A) {
    std::size_t n = A.size();
    std::vector<std::vector<double>> L(n, std::vector<double>(n, 0.0));
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j <= i; ++j) {
            double s = A[i][j];
            for (std::size_t k = 0; k < j; ++k) s -= L[i][k] * L[j][k];
            // Diagonal entries take a square root, the others divide by L[j][j].
            L[i][j] = (i == j) ? std::sqrt(s) : s / L[j][j];
        }
    }
    return L;
}
