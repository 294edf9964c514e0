import java.util.Random;
import java.util.function.DoubleUnaryOperator;

public class McIntegrate {
    // (b - a) times the mean of f at n uniform random points in [a, b].
    public static double mcIntegrate(DoubleUnaryOperator f, double a, double b, int n, long seed) {
        Random rng = new Random(seed);
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            sum += f.applyAsDouble(a + (b - a) * rng.nextDouble());
        }
        return (b - a) * sum / n;
    }
}
