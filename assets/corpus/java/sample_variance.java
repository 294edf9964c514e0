public class MeanVariance {
    // Returns {mean, unbiased sample variance}; needs at least two values.
    public static double[] meanVariance(double[] x) {
        int n = x.length;
        double mean = 0.0;
        for (double v : x) {
            mean += v;
        }
        mean /= n;
        double ss = 0.0;
        for (double v : x) {
            ss += (v - mean) * (v - mean);
        }
        // Divide by n - 1 (Bessel's correction).
        return new double[] {mean, ss / (n - 1)};
    }
}
