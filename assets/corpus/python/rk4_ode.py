def rk4(f, y0: float, t0: float, t1: float, n: int) -> float:
    h = (t1 - t0) / n
    t, y = t0, y0
    for _ in range(n):
        k1 = f(t, y)
        k2 = f(t + h / 2, y + h / 2 * k1)
        k3 = f(t + h / 2, y + h / 2 * k2)
        k4 = f(t + h, y + h * k3)
        # Weighted average of the four slope estimates
        y += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += h
    return y
