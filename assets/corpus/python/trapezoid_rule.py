def trapezoid(f, a: float, b: float, n: int) -> float:
    h = (b - a) / n
    # Endpoints carry half weight, interior points full weight
    s = 0.5 * (f(a) + f(b))
    s += sum(f(a + i * h) for i in range(1, n))
    return s * h
