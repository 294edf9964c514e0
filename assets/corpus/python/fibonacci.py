def fibonacci(n: int) -> int:
    a, b = 0, 1
    # Advance the pair (F(k), F(k + 1)) n times
    for _ in range(n):
        a, b = b, a + b
    return a
