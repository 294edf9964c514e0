import java.util.function.DoubleBinaryOperator;

public class Rk4 {
    // Classical fourth-order Runge-Kutta for y' = f(t, y) from t0 to t1 in n steps.
    public static double rk4(DoubleBinaryOperator f, double t0, double y0, double t1, int n) {
        double h = (t1 - t0) / n;
        double y = y0;
        for (int i = 0; i < n; i++) {
            double t = t0 + i * h;
            double k1 = f.applyAsDouble(t, y);
            double k2 = f.applyAsDouble(t + h / 2, y + h / 2 * k1);
            double k3 = f.applyAsDouble(t + h / 2, y + h / 2 * k2);
            double k4 = f.applyAsDouble(t + h, y + h * k3);
            // Weighted average of the four slopes.
            y += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
        }
        return y;
    }
}
