#include <utility>
#include <vector>

using Matrix = std::vector<std::vector<double>>;

// Doolittle LU: A = L U with a unit diagonal in L, no pivoting.
std::pair<Matrix, Matrix> lu_decompose(const Matrix& A) {
    std::size_t n = A.size();
    Matrix L(n, std::vector<double>(n, 0.0)), U = L;
    for (std::size_t i = 0; i < n; ++i) {
        // Row i of U.
        for (std::size_t k = i; k < n; ++k) {
            double s = A[i][k];
            for (std::size_t j = 0; j < i; ++j) s -= L[i][j] * U[j][k];
            U[i][k] = s;
        }
        // Column i of L.
        L[i][i] = 1.0;
        for (std::size_t k = i + 1; k < n; ++k) {
            double s = A[k][i];
            for (std::size_t j = 0; j < i; ++j) s -= L[k][j] * U[j][i];
            L[k][i] = s / U[i][i];
        }
    }
    return {L, U};
}
