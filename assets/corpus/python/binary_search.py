def binary_search(a: list[float], target: float) -> int:
    lo, hi = 0, len(a) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if a[mid] == target:
            return mid
        # Discard the half that cannot contain the target
        if a[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
