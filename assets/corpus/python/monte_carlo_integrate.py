import random


def mc_integrate(f, a: float, b: float, n: int, seed: int = 0) -> float:
    rng = random.Random(seed)
    # Mean value of f times the length of the interval
    total = sum(f(rng.uniform(a, b)) for _ in range(n))
    return (b - a) * total / n
