public class Jacobi {
    // Iterates on A x = b, computing every component from the previous iterate.
    public static double[] jacobi(double[][] a, double[] b, double tol, int maxIter) {
        int n = b.length;
        double[] x = new double[n];
        for (int it = 0; it < maxIter; it++) {
            double[] next = new double[n];
            double change = 0.0;
            for (int i = 0; i < n; i++) {
                double s = b[i];
                for (int j = 0; j < n; j++) {
                    if (j != i) {
                        s -= a[i][j] * x[j];
                    }
                }
                next[i] = s / a[i][i];
                change = Math.max(change, Math.abs(next[i] - x[i]));
            }
            x = next;
            // Stop once the largest update is below the tolerance.
            if (change < tol) {
                break;
            }
        }
        return x;
    }
}
