#include <cmath>
#include <utility>
#include <vector>

// Solves A x = b by Gaussian elimination with partial pivoting.
std::vector<double> gaussian_elimination(std::vector<std::vector<double>> A,
        std::vector<double> b) {
    int n = b.size();
    for (int k = 0; k < n; ++k) {
        // Swap the row with the largest pivot into place.
        int p = k;
        for (int i = k + 1; i < n; ++i) {
            if (std::fabs(A[i][k]) > std::fabs(A[p][k])) p = i;
        }
        std::swap(A[k], A[p]);
        std::swap(b[k], b[p]);
        for (int i = k + 1; i < n; ++i) {
            double f = A[i][k] / A[k][k];
            for (int j = k; j < n; ++j) A[i][j] -= f * A[k][j];
            b[i] -= f * b[k];
        }
    }
    // Back substitution on the upper triangular system.
    std::vector<double> x(n);
    for (int i = n - 1; i >= 0; --i) {
        for (int j = i + 1; j < n; ++j) b[i] -= A[i][j] * x[j];
        x[i] = b[i] / A[i][i];
    }
    return x;
}
