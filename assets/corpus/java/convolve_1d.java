public class Convolve {
    // Full result of length x.length + h.length - 1.
    public static double[] convolve(double[] x, double[] h) {
        double[] y = new double[x.length + h.length - 1];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < h.length; j++) {
                y[i + j] += x[i] * h[j];
            }
        }
        return y;
    }
}
