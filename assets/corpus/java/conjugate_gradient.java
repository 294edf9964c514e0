public class ConjugateGradient {
    public static double[] conjugateGradient(double[][] a, double[] b, double tol, int maxIter) {
        int n = b.length;
        double[] x = new double[n];
        double[] r = b.clone(), p = b.clone();
        double rr = dot(r, r);
        for (int it = 0; it < maxIter && rr > tol * tol; it++) {
            double[] ap = new double[n];
            for (int i = 0; i < n; i++) ap[i] = dot(a[i], p);
            double alpha = rr / dot(p, ap);
            for (int i = 0; i < n; i++) {
                x[i] += alpha * p[i];
                r[i] -= alpha * ap[i];
            }
            // Next A-conjugate direction.
            double beta = dot(r, r) / rr;
            rr *= beta;
            for (int i = 0; i < n; i++) p[i] = r[i] + beta * p[i];
        }
        return x;
    }

    private static double dot(double[] u, double[] v) {
        double s = 0.0;
        for (int i = 0; i < u.length; i++) s += u[i] * v[i];
        return s;
    }
}
