#include <vector>

// Lists the primes up to n by crossing out multiples of each prime (Eratosthenes).
std::vector<int> sieve(int n) {
    std::vector<int> primes;
    if (n < 2) return primes;
    std::vector<bool> is_prime(n + 1, true);
    for (long long p = 2; p * p <= n; ++p) {
        if (!is_prime[p]) continue;
        // Smaller multiples were already crossed out by smaller primes.
        for (long long q = p * p; q <= n; q += p) is_prime[q] = false;
    }
    for (int i = 2; i <= n; ++i) {
        if (is_prime[i]) primes.push_back(i);
    }
    return primes;
}
