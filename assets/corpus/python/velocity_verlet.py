def verlet_step(x: float, v: float, a, dt: float) -> tuple[float, float]:
    acc = a(x)
    x_new = x + v * dt + 0.5 * acc * dt * dt
    # Average the old and new accelerations to update the velocity
    v_new = v + 0.5 * (acc + a(x_new)) * dt
    return x_new, v_new
