def matmul(A: list[list[float]], B: list[list[float]]) -> list[list[float]]:
    # Pair each row of A with each column of B
    cols = list(zip(*B))
    return [[sum(a * b for a, b in zip(row, col)) for col in cols] for row in A]
