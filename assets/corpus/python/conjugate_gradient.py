def conjugate_gradient(
    A: list[list[float]], b: list[float], tol: float = 1e-10, max_iter: int = 1000
) -> list[float]:
    n = len(b)
    x = [0.0] * n
    r = list(b)
    p = list(r)
    rs = sum(v * v for v in r)
    for _ in range(max_iter):
        if rs ** 0.5 < tol:
            break
        Ap = [sum(A[i][j] * p[j] for j in range(n)) for i in range(n)]
        alpha = rs / sum(u * v for u, v in zip(p, Ap))
        x = [xi + alpha * pi for xi, pi in zip(x, p)]
        r = [ri - alpha * api for ri, api in zip(r, Ap)]
        rs_new = sum(v * v for v in r)
        # New search direction, A-conjugate to the previous ones
        p = [ri + (rs_new / rs) * pi for ri, pi in zip(r, p)]
        rs = rs_new
    return x
