import java.util.function.DoubleUnaryOperator;

public class Simpson {
    // Composite rule with an even number n of intervals and weights 1, 4, 2, ..., 4, 1.
    public static double simpson(DoubleUnaryOperator f, double a, double b, int n) {
        if (n <= 0 || n % 2 != 0) {
            throw new IllegalArgumentException("n must be a positive even number");
        }
        double h = (b - a) / n;
        double sum = f.applyAsDouble(a) + f.applyAsDouble(b);
        for (int i = 1; i < n; i++) {
            sum += (i % 2 == 1 ? 4 : 2) * f.applyAsDouble(a + i * h);
        }
        return sum * h / 3;
    }
}
