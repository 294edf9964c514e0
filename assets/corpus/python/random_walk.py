import random


def random_walk(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    positions = [0]
    for _ in range(n):
        # Step left or right with equal probability
        positions.append(positions[-1] + rng.choice((-1, 1)))
    return positions
