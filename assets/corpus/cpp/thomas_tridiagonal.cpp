#include <vector>

// Sub-diagonal a and super-diagonal c have n - 1 entries, main diagonal b and d have n.
std::vector<double> thomas_solve(const std::vector<double>& a, const std::vector<double>& b,
        const std::vector<double>& c, const std::vector<double>& d) {
    std::size_t n = b.size();
    std::vector<double> cp(n, 0.0), dp(n), x(n);
    // Forward sweep removes the sub-diagonal.
    for (std::size_t i = 0; i < n; ++i) {
        double m = b[i] - (i > 0 ? a[i - 1] * cp[i - 1] : 0.0);
        if (i + 1 < n) cp[i] = c[i] / m;
        dp[i] = (d[i] - (i > 0 ? a[i - 1] * dp[i - 1] : 0.0)) / m;
    }
    // Back substitution.
    for (std::size_t i = n; i-- > 0;) {
        x[i] = dp[i] - (i + 1 < n ? cp[i] * x[i + 1] : 0.0);
    }
    return x;
}
