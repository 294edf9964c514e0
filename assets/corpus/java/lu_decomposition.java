public class LuDecompose {
    // Doolittle method: L has a unit diagonal and U is upper triangular.
    public static double[][][] luDecompose(double[][] a) {
        int n = a.length;
        double[][] l = new double[n][n];
        double[][] u = new double[n][n];
        for (int i = 0; i < n; i++) {
            // Row i of U.
            for (int k = i; k < n; k++) {
                double s = 0.0;
                for (int j = 0; j < i; j++) {
                    s += l[i][j] * u[j][k];
                }
                u[i][k] = a[i][k] - s;
            }
            // Column i of L.
            l[i][i] = 1.0;
            for (int k = i + 1; k < n; k++) {
                double s = 0.0;
                for (int j = 0; j < i; j++) {
                    s += l[k][j] * u[j][i];
                }
                l[k][i] = (a[k][i] - s) / u[i][i];
            }
        }
        return new double[][][] {l, u};
    }
}
