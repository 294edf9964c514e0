def median(x: list[float]) -> float:
    s = sorted(x)
    n = len(s)
    mid = n // 2
    # Even length: average the two middle values
    if n % 2 == 0:
        return (s[mid - 1] + s[mid]) / 2
    return s[mid]
