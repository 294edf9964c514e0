def euler(f, y0: float, t0: float, t1: float, n: int) -> float:
    h = (t1 - t0) / n
    t, y = t0, y0
    for _ in range(n):
        # Follow the slope at the start of the step
        y += h * f(t, y)
        t += h
    return y
