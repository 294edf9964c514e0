public class WelfordStd {
    // Sample standard deviation (n - 1 denominator) in a single pass.
    public static double welfordStd(double[] x) {
        double mean = 0.0;
        double m2 = 0.0;
        int n = 0;
        for (double v : x) {
            n++;
            double delta = v - mean;
            mean += delta / n;
            // m2 accumulates the sum of squared deviations.
            m2 += delta * (v - mean);
        }
        return n > 1 ? Math.sqrt(m2 / (n - 1)) : 0.0;
    }
}
