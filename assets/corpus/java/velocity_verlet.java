import java.util.function.DoubleUnaryOperator;

public class VerletStep {
    // One step of size dt; returns the new {position, velocity}.
    public static double[] verletStep(double x, double v, DoubleUnaryOperator a, double dt) {
        double a0 = a.applyAsDouble(x);
        double xNew = x + v * dt + 0.5 * a0 * dt * dt;
        // The velocity uses the average of the old and new accelerations.
        double a1 = a.applyAsDouble(xNew);
        double vNew = v + 0.5 * (a0 + a1) * dt;
        return new double[] {xNew, vNew};
    }
}
