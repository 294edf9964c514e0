public class PowerIteration {
    // Applies A to a unit vector until its Rayleigh quotient stops changing.
    public static double powerIteration(double[][] a, double tol, int maxIter) {
        int n = a.length;
        double[] v = new double[n];
        java.util.Arrays.fill(v, 1.0 / Math.sqrt(n));
        double lambda = 0.0;
        for (int it = 0; it < maxIter; it++) {
            double[] w = new double[n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) w[i] += a[i][j] * v[j];
            }
            double next = 0.0;
            double norm = 0.0;
            for (int i = 0; i < n; i++) {
                next += v[i] * w[i];
                norm += w[i] * w[i];
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < n; i++) v[i] = w[i] / norm;
            if (Math.abs(next - lambda) < tol) {
                return next;
            }
            lambda = next;
        }
        return lambda;
    }
}
