def matvec(A: list[list[float]], x: list[float]) -> list[float]:
    # Each output entry is the dot product of a row with x
    return [sum(a * xi for a, xi in zip(row, x)) for row in A]
