import java.util.function.DoubleUnaryOperator;

public class Derivative {
    // Symmetric difference quotient with error O(h^2).
    public static double derivative(DoubleUnaryOperator f, double x, double h) {
        return (f.applyAsDouble(x + h) - f.applyAsDouble(x - h)) / (2 * h);
    }
}
