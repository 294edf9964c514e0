public class Dft {
    // X[k] = sum_j x[j] exp(-2 pi i j k / n), returned as {re, im}.
    public static double[][] dft(double[] x) {
        int n = x.length;
        double[] re = new double[n];
        double[] im = new double[n];
        for (int k = 0; k < n; k++) {
            for (int j = 0; j < n; j++) {
                double angle = -2 * Math.PI * j * k / n;
                re[k] += x[j] * Math.cos(angle);
                im[k] += x[j] * Math.sin(angle);
            }
        }
        return new double[][] {re, im};
    }
}
