import java.util.function.DoubleUnaryOperator;

public class Bisection {
    // Requires f(a) and f(b) to have opposite signs; halves [a, b] until it is shorter than tol.
    public static double bisection(DoubleUnaryOperator f, double a, double b, double tol) {
        double fa = f.applyAsDouble(a);
        if (fa * f.applyAsDouble(b) > 0) {
            throw new IllegalArgumentException("f(a) and f(b) must have opposite signs");
        }
        while (b - a > tol) {
            double m = 0.5 * (a + b);
            double fm = f.applyAsDouble(m);
            if (fm == 0.0) {
                return m;
            }
            // Keep the half on which the sign changes.
            if (fa * fm < 0) {
                b = m;
            } else {
                a = m;
                fa = fm;
            }
        }
        return 0.5 * (a + b);
    }
}
