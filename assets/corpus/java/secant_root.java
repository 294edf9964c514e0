import java.util.function.DoubleUnaryOperator;

public class Secant {
    // Replaces the derivative with the slope through the last two iterates.
    public static double secant(DoubleUnaryOperator f, double x0, double x1, double tol, int maxIter) {
        double f0 = f.applyAsDouble(x0);
        double f1 = f.applyAsDouble(x1);
        for (int i = 0; i < maxIter && Math.abs(x1 - x0) > tol; i++) {
            if (f1 == f0) {
                break;
            }
            double x2 = x1 - f1 * (x1 - x0) / (f1 - f0);
            x0 = x1;
            f0 = f1;
            x1 = x2;
            f1 = f.applyAsDouble(x1);
        }
        return x1;
    }
}
