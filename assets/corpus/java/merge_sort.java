import java.util.Arrays;

public class MergeSort {
    // Returns a new sorted array; the input is left unchanged.
    public static double[] mergeSort(double[] a) {
        if (a.length <= 1) {
            return a.clone();
        }
        int mid = a.length / 2;
        double[] left = mergeSort(Arrays.copyOfRange(a, 0, mid));
        double[] right = mergeSort(Arrays.copyOfRange(a, mid, a.length));
        // Merge the two sorted halves.
        double[] out = new double[a.length];
        int i = 0, j = 0, k = 0;
        while (i < left.length && j < right.length) {
            out[k++] = left[i] <= right[j] ? left[i++] : right[j++];
        }
        while (i < left.length) {
            out[k++] = left[i++];
        }
        while (j < right.length) {
            out[k++] = right[j++];
        }
        return out;
    }
}
