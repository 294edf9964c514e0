import java.util.function.DoubleUnaryOperator;

public class Newton {
    // Iterates x -= f(x) / df(x) until the step is below tol or maxIter is reached.
    public static double newton(DoubleUnaryOperator f, DoubleUnaryOperator df, double x0, double tol, int maxIter) {
        double x = x0;
        for (int i = 0; i < maxIter; i++) {
            double d = df.applyAsDouble(x);
            if (d == 0.0) {
                throw new ArithmeticException("zero derivative");
            }
            double step = f.applyAsDouble(x) / d;
            x -= step;
            if (Math.abs(step) < tol) {
                break;
            }
        }
        return x;
    }
}
