import random


def estimate_pi(n: int, seed: int = 0) -> float:
    rng = random.Random(seed)
    inside = 0
    for _ in range(n):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    # The quarter disc covers pi/4 of the unit square
    return 4.0 * inside / n
