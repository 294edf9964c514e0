def midpoint_method(f, y0: float, t0: float, t1: float, n: int) -> float:
    h = (t1 - t0) / n
    t, y = t0, y0
    for _ in range(n):
        # Use the slope estimated at the middle of the step
        k = f(t + h / 2, y + h / 2 * f(t, y))
        y += h * k
        t += h
    return y
