def linear_search(a: list[float], target: float) -> int:
    # Scan from the front so the first match wins
    for i, x in enumerate(a):
        if x == target:
            return i
    return -1
