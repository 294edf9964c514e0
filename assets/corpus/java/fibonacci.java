public class Fibonacci {
    // F(0) = 0, F(1) = 1; iterates with two running values.
    public static long fibonacci(int n) {
        long a = 0;
        long b = 1;
        for (int i = 0; i < n; i++) {
            long next = a + b;
            a = b;
            b = next;
        }
        return a;
    }
}
