def secant(
    f, x0: float, x1: float, tol: float = 1e-10, max_iter: int = 1000
) -> float:
    f0, f1 = f(x0), f(x1)
    for _ in range(max_iter):
        if f1 == f0:
            break
        # Replace the derivative by the slope through the last two points
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        x0, f0 = x1, f1
        x1, f1 = x2, f(x2)
        if abs(x1 - x0) < tol:
            break
    return x1
