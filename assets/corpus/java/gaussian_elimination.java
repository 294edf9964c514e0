public class GaussianElimination {
    public static double[] gaussianElimination(double[][] a, double[] b) {
        int n = b.length;
        double[][] m = new double[n][];
        for (int i = 0; i < n; i++) {
            m[i] = java.util.Arrays.copyOf(a[i], n + 1);
            m[i][n] = b[i];
        }
        for (int k = 0; k < n; k++) {
            // Partial pivoting by row swaps.
            int p = k;
            for (int i = k + 1; i < n; i++) if (Math.abs(m[i][k]) > Math.abs(m[p][k])) p = i;
            double[] t = m[k];
            m[k] = m[p];
            m[p] = t;
            for (int i = k + 1; i < n; i++) {
                double f = m[i][k] / m[k][k];
                for (int j = k; j <= n; j++) m[i][j] -= f * m[k][j];
            }
        }
        double[] x = new double[n];
        for (int i = n - 1; i >= 0; i--) {
            for (int j = i + 1; j < n; j++) m[i][n] -= m[i][j] * x[j];
            x[i] = m[i][n] / m[i][i];
        }
        return x;
    }
}
