import java.util.function.DoubleBinaryOperator;

public class MidpointMethod {
    // Integrates y' = f(t, y) from t0 to t1 in n steps.
    public static double midpointMethod(DoubleBinaryOperator f, double t0, double y0, double t1, int n) {
        double h = (t1 - t0) / n;
        double y = y0;
        for (int i = 0; i < n; i++) {
            double t = t0 + i * h;
            // Take the slope at the midpoint of the step.
            double yMid = y + h / 2 * f.applyAsDouble(t, y);
            y += h * f.applyAsDouble(t + h / 2, yMid);
        }
        return y;
    }
}
