public class SelectionSort {
    // Sorts a in place by moving the smallest remaining element to the front.
    public static void selectionSort(double[] a) {
        for (int i = 0; i < a.length - 1; i++) {
            int min = i;
            for (int j = i + 1; j < a.length; j++) {
                if (a[j] < a[min]) {
                    min = j;
                }
            }
            double t = a[i];
            a[i] = a[min];
            a[min] = t;
        }
    }
}
