def lu_decompose(A: list[list[float]]) -> tuple[list[list[float]], list[list[float]]]:
    n = len(A)
    L = [[float(i == j) for j in range(n)] for i in range(n)]
    U = [[0.0] * n for _ in range(n)]
    for i in range(n):
        # Row i of U
        for k in range(i, n):
            U[i][k] = A[i][k] - sum(L[i][j] * U[j][k] for j in range(i))
        # Column i of L, with a unit diagonal (Doolittle)
        for k in range(i + 1, n):
            L[k][i] = (A[k][i] - sum(L[k][j] * U[j][i] for j in range(i))) / U[i][i]
    return L, U
