def histogram(x: list[float], k: int) -> list[int]:
    lo, hi = min(x), max(x)
    width = (hi - lo) / k
    counts = [0] * k
    for v in x:
        # The maximum belongs to the last bin
        i = int((v - lo) / width) if width > 0 else 0
        counts[min(i, k - 1)] += 1
    return counts
