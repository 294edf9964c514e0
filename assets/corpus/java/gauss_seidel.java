public class GaussSeidel {
    // Iterates on A x = b, reusing each updated component immediately.
    public static double[] gaussSeidel(double[][] a, double[] b, double tol, int maxIter) {
        int n = b.length;
        double[] x = new double[n];
        for (int it = 0; it < maxIter; it++) {
            double change = 0.0;
            for (int i = 0; i < n; i++) {
                double s = b[i];
                for (int j = 0; j < n; j++) {
                    if (j != i) {
                        s -= a[i][j] * x[j];
                    }
                }
                double xi = s / a[i][i];
                change = Math.max(change, Math.abs(xi - x[i]));
                x[i] = xi;
            }
            // Stop once the largest update is below the tolerance.
            if (change < tol) {
                break;
            }
        }
        return x;
    }
}
