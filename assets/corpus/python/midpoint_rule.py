def midpoint_rule(f, a: float, b: float, n: int) -> float:
    h = (b - a) / n
    # Sample f at the centre of every subinterval
    return h * sum(f(a + (i + 0.5) * h) for i in range(n))
