public class LinearSearch {
    // Returns the first index holding target, or -1 if there is none.
    public static int linearSearch(double[] a, double target) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] == target) {
                return i;
            }
        }
        return -1;
    }
}
