import java.util.Arrays;

public class Median {
    // Sorts a copy; with an even count, averages the two middle values.
    public static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        int n = s.length;
        if (n % 2 == 1) {
            return s[n / 2];
        }
        return 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }
}
