public class MovingAverage {
    // Mean of every full window of size w, updated with a running sum.
    public static double[] movingAverage(double[] x, int w) {
        if (w <= 0 || w > x.length) {
            throw new IllegalArgumentException("window must be between 1 and x.length");
        }
        double[] out = new double[x.length - w + 1];
        double sum = 0.0;
        for (int i = 0; i < x.length; i++) {
            sum += x[i];
            if (i >= w) {
                sum -= x[i - w];
            }
            if (i >= w - 1) {
                out[i - w + 1] = sum / w;
            }
        }
        return out;
    }
}
