def insertion_sort(a: list[float]) -> list[float]:
    a = list(a)
    for i in range(1, len(a)):
        key = a[i]
        j = i - 1
        # Shift larger items right to open a slot for key
        while j >= 0 and a[j] > key:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = key
    return a
