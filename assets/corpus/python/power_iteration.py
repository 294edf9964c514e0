import math


def power_iteration(A: list[list[float]], tol: float = 1e-10,
                    max_iter: int = 1000) -> float:
    n = len(A)
    v = [1.0 / math.sqrt(n)] * n
    lam = 0.0
    for _ in range(max_iter):
        w = [sum(A[i][j] * v[j] for j in range(n)) for i in range(n)]
        # Rayleigh quotient of the current unit vector
        lam_new = sum(vi * wi for vi, wi in zip(v, w))
        norm = math.sqrt(sum(wi * wi for wi in w))
        v = [wi / norm for wi in w]
        if abs(lam_new - lam) < tol:
            return lam_new
        lam = lam_new
    return lam
