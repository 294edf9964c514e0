def heun(f, y0: float, t0: float, t1: float, n: int) -> float:
    h = (t1 - t0) / n
    t, y = t0, y0
    for _ in range(n):
        k1 = f(t, y)
        # Euler predictor, then average the slopes at both ends
        k2 = f(t + h, y + h * k1)
        y += h / 2 * (k1 + k2)
        t += h
    return y
