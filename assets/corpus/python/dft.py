import cmath


def dft(x: list[float]) -> list[complex]:
    n = len(x)
    # X[k] = sum_t x[t] * exp(-2 pi i k t / n)
    return [sum(x[t] * cmath.exp(-2j * cmath.pi * k * t / n) for t in range(n))
            for k in range(n)]
