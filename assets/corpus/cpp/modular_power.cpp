// Computes base^exp mod m by square-and-multiply; needs m < 2^32 to avoid overflow.
unsigned long long mod_pow(unsigned long long base, unsigned long long exp,
        unsigned long long m) {
    if (m == 1) return 0;
    unsigned long long result = 1;
    base %= m;
    while (exp > 0) {
        // Multiply in the current square whenever the low bit of exp is set.
        if (exp & 1) result = result * base % m;
        base = base * base % m;
        exp >>= 1;
    }
    return result;
}
