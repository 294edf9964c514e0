import java.util.function.DoubleBinaryOperator;

public class Euler {
    // Advances y' = f(t, y) from t0 to t1 in n steps of y += h * f(t, y).
    public static double euler(DoubleBinaryOperator f, double t0, double y0, double t1, int n) {
        double h = (t1 - t0) / n;
        double y = y0;
        for (int i = 0; i < n; i++) {
            double t = t0 + i * h;
            y += h * f.applyAsDouble(t, y);
        }
        return y;
    }
}
