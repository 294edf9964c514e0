def thomas_solve(
    a: list[float], b: list[float], c: list[float], d: list[float]
) -> list[float]:
    # a: sub-diagonal (a[0] unused), b: main diagonal, c: super-diagonal
    n = len(d)
    cp = [0.0] * n
    dp = [0.0] * n
    cp[0] = c[0] / b[0] if n > 1 else 0.0
    dp[0] = d[0] / b[0]
    # Forward sweep eliminates the sub-diagonal
    for i in range(1, n):
        m = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / m if i < n - 1 else 0.0
        dp[i] = (d[i] - a[i] * dp[i - 1]) / m
    # Back substitution
    x = [0.0] * n
    x[-1] = dp[-1]
    for i in range(n - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return x
