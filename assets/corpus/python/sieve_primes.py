def sieve(n: int) -> list[int]:
    if n < 2:
        return []
    is_prime = [True] * (n + 1)
    is_prime[0] = is_prime[1] = False
    for p in range(2, int(n ** 0.5) + 1):
        if is_prime[p]:
            # Multiples below p * p were already crossed out
            for m in range(p * p, n + 1, p):
                is_prime[m] = False
    return [i for i, flag in enumerate(is_prime) if flag]
