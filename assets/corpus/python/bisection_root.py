def bisection(
    f, a: float, b: float, tol: float = 1e-10, max_iter: int = 1000
) -> float:
    fa = f(a)
    if fa * f(b) > 0:
        raise ValueError("f(a) and f(b) must have opposite signs")
    for _ in range(max_iter):
        m = (a + b) / 2
        fm = f(m)
        if fm == 0 or (b - a) / 2 < tol:
            return m
        # Keep the half of the interval where the sign changes
        if fa * fm < 0:
            b = m
        else:
            a, fa = m, fm
    return (a + b) / 2
