def jacobi(
    A: list[list[float]], b: list[float], tol: float = 1e-10, max_iter: int = 1000
) -> list[float]:
    n = len(b)
    x = [0.0] * n
    for _ in range(max_iter):
        # Every new entry is computed from the previous iterate only
        new = [
            (b[i] - sum(A[i][j] * x[j] for j in range(n) if j != i)) / A[i][i]
            for i in range(n)
        ]
        delta = max(abs(u - v) for u, v in zip(new, x))
        x = new
        if delta < tol:
            break
    return x
