def mod_pow(base: int, exponent: int, m: int) -> int:
    result = 1 % m
    base %= m
    while exponent > 0:
        # Multiply in the current square when the low bit is set
        if exponent & 1:
            result = result * base % m
        base = base * base % m
        exponent >>= 1
    return result
