def selection_sort(a: list[float]) -> list[float]:
    a = list(a)
    n = len(a)
    for i in range(n - 1):
        # Find the smallest item in the unsorted tail
        m = min(range(i, n), key=a.__getitem__)
        a[i], a[m] = a[m], a[i]
    return a
