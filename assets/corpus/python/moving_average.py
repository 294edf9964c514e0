def moving_average(x: list[float], w: int) -> list[float]:
    if w <= 0 or w > len(x):
        return []
    s = sum(x[:w])
    out = [s / w]
    for i in range(w, len(x)):
        # Slide the window: add the new value, drop the oldest
        s += x[i] - x[i - w]
        out.append(s / w)
    return out
