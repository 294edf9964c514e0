import math


def welford_std(x: list[float]) -> float:
    count, mean, m2 = 0, 0.0, 0.0
    for v in x:
        count += 1
        delta = v - mean
        mean += delta / count
        # Accumulate the sum of squared deviations incrementally
        m2 += delta * (v - mean)
    return math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
