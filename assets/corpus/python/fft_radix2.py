import cmath


def fft(x: list[complex]) -> list[complex]:
    n = len(x)
    if n == 1:
        return [complex(x[0])]
    # Transform the even- and odd-indexed halves separately
    even = fft(x[0::2])
    odd = fft(x[1::2])
    out = [0j] * n
    for k in range(n // 2):
        t = cmath.exp(-2j * cmath.pi * k / n) * odd[k]
        out[k] = even[k] + t
        out[k + n // 2] = even[k] - t
    return out
