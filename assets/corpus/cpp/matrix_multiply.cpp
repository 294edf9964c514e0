#include <vector>

using Matrix = std::vector<std::vector<double>>;

// Returns the product C = A B of an n x m and an m x p matrix.
Matrix matmul(const Matrix& A, const Matrix& B) {
    std::size_t n = A.size(), m = B.size(), p = B.empty() ? 0 : B[0].size();
    Matrix C(n, std::vector<double>(p, 0.0));
    // The i-k-j loop order walks rows of B and C contiguously.
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < m; ++k) {
            double aik = A[i][k];
            for (std::size_t j = 0; j < p; ++j) C[i][j] += aik * B[k][j];
        }
    }
    return C;
}
