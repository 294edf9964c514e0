#include <vector>

// Solves A x = b for a symmetric positive definite matrix A.
std::vector<double> conjugate_gradient(const std::vector<std::vector<double>>& A,
        const std::vector<double>& b, double tol = 1e-10, int max_iter = 1000) {
    int n = b.size();
    std::vector<double> x(n), r = b, p = b, Ap(n);
    double rr = 0.0;
    for (double v : r) rr += v * v;
    for (int it = 0; it < max_iter && rr > tol * tol; ++it) {
        double pAp = 0.0;
        for (int i = 0; i < n; ++i) {
            Ap[i] = 0.0;
            for (int j = 0; j < n; ++j) Ap[i] += A[i][j] * p[j];
            pAp += p[i] * Ap[i];
        }
        double alpha = rr / pAp, rs = 0.0;
        for (int i = 0; i < n; ++i) {
            x[i] += alpha * p[i];
            r[i] -= alpha * Ap[i];
            rs += r[i] * r[i];
        }
        // Next search direction, A-conjugate to the previous ones.
        for (int i = 0; i < n; ++i) p[i] = r[i] + rs / rr * p[i];
        rr = rs;
    }
    return x;
}
