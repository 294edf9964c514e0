import java.util.Random;

public class RandomWalk {
    // Returns n + 1 positions, starting at 0 and moving +1 or -1 each step.
    public static int[] randomWalk(int n, long seed) {
        Random rng = new Random(seed);
        int[] pos = new int[n + 1];
        for (int i = 1; i <= n; i++) {
            pos[i] = pos[i - 1] + (rng.nextBoolean() ? 1 : -1);
        }
        return pos;
    }
}
