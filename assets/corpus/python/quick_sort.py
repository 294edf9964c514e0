def quick_sort(a: list[float]) -> list[float]:
    if len(a) <= 1:
        return list(a)
    pivot = a[len(a) // 2]
    # Partition into items below, equal to and above the pivot
    less = [x for x in a if x < pivot]
    equal = [x for x in a if x == pivot]
    greater = [x for x in a if x > pivot]
    return quick_sort(less) + equal + quick_sort(greater)
