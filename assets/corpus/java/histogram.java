public class Histogram {
    // k equal-width bins over [min, max]; the maximum falls in the last bin.
    public static int[] histogram(double[] x, int k) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        int[] counts = new int[k];
        double width = (hi - lo) / k;
        for (double v : x) {
            int bin = width > 0 ? (int) ((v - lo) / width) : 0;
            counts[Math.min(bin, k - 1)]++;
        }
        return counts;
    }
}
