def bubble_sort(a: list[float]) -> list[float]:
    a = list(a)
    n = len(a)
    for i in range(n - 1):
        swapped = False
        # After pass i the largest i + 1 items sit at the end
        for j in range(n - 1 - i):
            if a[j] > a[j + 1]:
                a[j], a[j + 1] = a[j + 1], a[j]
                swapped = True
        if not swapped:
            break
    return a
