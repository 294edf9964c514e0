public class QuickSort {
    // Sorts a[lo..hi] in place (call with lo = 0, hi = a.length - 1).
    public static void quickSort(double[] a, int lo, int hi) {
        if (lo >= hi) {
            return;
        }
        // Lomuto partition around the last element.
        double pivot = a[hi];
        int p = lo;
        for (int i = lo; i < hi; i++) {
            if (a[i] < pivot) {
                double t = a[i];
                a[i] = a[p];
                a[p++] = t;
            }
        }
        a[hi] = a[p];
        a[p] = pivot;
        quickSort(a, lo, p - 1);
        quickSort(a, p + 1, hi);
    }
}
