public class Gcd {
    // Euclid's algorithm: replace (a, b) with (b, a mod b) until b is zero.
    public static long gcd(long a, long b) {
        a = Math.abs(a);
        b = Math.abs(b);
        while (b != 0) {
            long r = a % b;
            a = b;
            b = r;
        }
        return a;
    }
}
