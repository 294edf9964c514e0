def gauss_seidel(
    A: list[list[float]], b: list[float], tol: float = 1e-10, max_iter: int = 1000
) -> list[float]:
    n = len(b)
    x = [0.0] * n
    for _ in range(max_iter):
        delta = 0.0
        for i in range(n):
            # Use the freshly updated entries of x as soon as they are available
            s = sum(A[i][j] * x[j] for j in range(n) if j != i)
            new = (b[i] - s) / A[i][i]
            delta = max(delta, abs(new - x[i]))
            x[i] = new
        if delta < tol:
            break
    return x
