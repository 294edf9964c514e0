import java.util.function.DoubleUnaryOperator;

public class MidpointRule {
    // Sums f at the centre of each of the n equal intervals.
    public static double midpointRule(DoubleUnaryOperator f, double a, double b, int n) {
        double h = (b - a) / n;
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            sum += f.applyAsDouble(a + (i + 0.5) * h);
        }
        return sum * h;
    }
}
