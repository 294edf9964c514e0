#include <vector>

// Returns y = A x for a dense matrix A stored row by row.
std::vector<double> matvec(const std::vector<std::vector<double>>& A,
        const std::vector<double>& x) {
    std::vector<double> y(A.size(), 0.0);
    for (std::size_t i = 0; i < A.size(); ++i) {
        // Dot product of row i with x.
        for (std::size_t j = 0; j < x.size(); ++j) y[i] += A[i][j] * x[j];
    }
    return y;
}
