public class ThomasSolve {
    // Sub-diagonal a and super-diagonal c have length n - 1; b and d have length n.
    public static double[] thomasSolve(double[] a, double[] b, double[] c, double[] d) {
        int n = b.length;
        double[] cp = new double[n];
        double[] dp = new double[n];
        cp[0] = n > 1 ? c[0] / b[0] : 0.0;
        dp[0] = d[0] / b[0];
        // Forward sweep eliminates the sub-diagonal.
        for (int i = 1; i < n; i++) {
            double m = b[i] - a[i - 1] * cp[i - 1];
            cp[i] = i < n - 1 ? c[i] / m : 0.0;
            dp[i] = (d[i] - a[i - 1] * dp[i - 1]) / m;
        }
        // Back substitution.
        double[] x = new double[n];
        x[n - 1] = dp[n - 1];
        for (int i = n - 2; i >= 0; i--) {
            x[i] = dp[i] - cp[i] * x[i + 1];
        }
        return x;
    }
}
