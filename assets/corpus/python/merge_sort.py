def merge(left: list[float], right: list[float]) -> list[float]:
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    # One side is exhausted; append what remains of the other
    return out + left[i:] + right[j:]


def merge_sort(a: list[float]) -> list[float]:
    if len(a) <= 1:
        return list(a)
    mid = len(a) // 2
    return merge(merge_sort(a[:mid]), merge_sort(a[mid:]))
