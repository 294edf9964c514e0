#include <cstdlib>

// Greatest common divisor by Euclid's algorithm; the result is never negative.
long long gcd(long long a, long long b) {
    a = std::llabs(a);
    b = std::llabs(b);
    while (b != 0) {
        // The divisors of (a, b) and (b, a mod b) are the same.
        long long r = a % b;
        a = b;
        b = r;
    }
    return a;
}
