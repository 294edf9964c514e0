import java.util.function.DoubleBinaryOperator;

public class Heun {
    // Integrates y' = f(t, y) from t0 to t1 in n steps.
    public static double heun(DoubleBinaryOperator f, double t0, double y0, double t1, int n) {
        double h = (t1 - t0) / n;
        double y = y0;
        for (int i = 0; i < n; i++) {
            double t = t0 + i * h;
            double k1 = f.applyAsDouble(t, y);
            // Euler predictor, then trapezoidal corrector.
            double k2 = f.applyAsDouble(t + h, y + h * k1);
            y += h / 2 * (k1 + k2);
        }
        return y;
    }
}
