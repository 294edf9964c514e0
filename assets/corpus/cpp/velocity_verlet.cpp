#include <functional>
#include <utility>

// Advances position x and velocity v by one step dt; returns the new (x, v).
std::pair<double, double> verlet_step(double x, double v,
        const std::function<double(double)>& a, double dt) {
    double a0 = a(x);
    double x_new = x + v * dt + 0.5 * a0 * dt * dt;
    // The velocity uses the mean of the old and new accelerations.
    double v_new = v + 0.5 * (a0 + a(x_new)) * dt;
    return {x_new, v_new};
}
