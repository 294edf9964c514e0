def gcd(a: int, b: int) -> int:
    # Replace (a, b) by (b, a mod b) until the remainder vanishes
    while b:
        a, b = b, a % b
    return abs(a)
