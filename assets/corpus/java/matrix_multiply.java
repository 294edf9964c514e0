public class Matmul {
    // Returns the product of an n x m matrix a and an m x p matrix b.
    public static double[][] matmul(double[][] a, double[][] b) {
        int n = a.length;
        int m = b.length;
        int p = b[0].length;
        if (a[0].length != m) {
            throw new IllegalArgumentException("inner dimensions do not match");
        }
        double[][] c = new double[n][p];
        for (int i = 0; i < n; i++) {
            // The i-k-j loop order walks rows of b contiguously.
            for (int k = 0; k < m; k++) {
                double aik = a[i][k];
                for (int j = 0; j < p; j++) {
                    c[i][j] += aik * b[k][j];
                }
            }
        }
        return c;
    }
}
