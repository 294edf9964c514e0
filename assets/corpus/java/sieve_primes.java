import java.util.ArrayList;
import java.util.List;

public class Sieve {
    // Eratosthenes: cross out multiples of each prime p, starting at p * p.
    public static List<Integer> sieve(int n) {
        boolean[] composite = new boolean[Math.max(n + 1, 2)];
        List<Integer> primes = new ArrayList<>();
        for (int p = 2; p <= n; p++) {
            if (composite[p]) {
                continue;
            }
            primes.add(p);
            for (long m = (long) p * p; m <= n; m += p) {
                composite[(int) m] = true;
            }
        }
        return primes;
    }
}
