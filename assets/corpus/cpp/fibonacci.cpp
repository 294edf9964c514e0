// Returns F(n) with F(0) = 0 and F(1) = 1; exact up to n = 93.
unsigned long long fibonacci(int n) {
    unsigned long long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        // Shift the pair (F(i), F(i+1)) one step forward.
        unsigned long long next = a + b;
        a = b;
        b = next;
    }
    return a;
}
