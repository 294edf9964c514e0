import java.util.Random;

public class EstimatePi {
    // The fraction of points inside the quarter circle approaches pi / 4.
    public static double estimatePi(int n, long seed) {
        Random rng = new Random(seed);
        int inside = 0;
        for (int i = 0; i < n; i++) {
            double x = rng.nextDouble();
            double y = rng.nextDouble();
            if (x * x + y * y <= 1.0) {
                inside++;
            }
        }
        return 4.0 * inside / n;
    }
}
