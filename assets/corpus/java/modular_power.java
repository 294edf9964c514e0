public class ModPow {
    // Square-and-multiply; m must be positive and below 2^31 to avoid overflow.
    public static long modPow(long base, long exponent, long m) {
        long result = 1 % m;
        long b = Math.floorMod(base, m);
        long e = exponent;
        while (e > 0) {
            if ((e & 1) == 1) {
                result = result * b % m;
            }
            b = b * b % m;
            e >>= 1;
        }
        return result;
    }
}
