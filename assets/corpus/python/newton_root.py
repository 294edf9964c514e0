def newton(f, df, x0: float, tol: float = 1e-10, max_iter: int = 1000) -> float:
    x = x0
    for _ in range(max_iter):
        # Jump to where the tangent line crosses zero
        step = f(x) / df(x)
        x -= step
        if abs(step) < tol:
            break
    return x
