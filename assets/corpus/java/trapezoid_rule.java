import java.util.function.DoubleUnaryOperator;

public class Trapezoid {
    // Composite rule with n equal intervals; the end points get half weight.
    public static double trapezoid(DoubleUnaryOperator f, double a, double b, int n) {
        double h = (b - a) / n;
        double sum = 0.5 * (f.applyAsDouble(a) + f.applyAsDouble(b));
        for (int i = 1; i < n; i++) {
            sum += f.applyAsDouble(a + i * h);
        }
        return sum * h;
    }
}
