public class Fft {
    // Recursive radix-2; n must be a power of two.
    public static double[][] fft(double[] re, double[] im) {
        int n = re.length;
        if (n == 1) {
            return new double[][] {re.clone(), im.clone()};
        }
        int h = n / 2;
        double[][] s = new double[4][h];
        for (int k = 0; k < n; k++) {
            s[2 * (k % 2)][k / 2] = re[k];
            s[2 * (k % 2) + 1][k / 2] = im[k];
        }
        double[][] e = fft(s[0], s[1]), o = fft(s[2], s[3]);
        double[][] out = new double[2][n];
        for (int k = 0; k < h; k++) {
            // Twiddle: t = o[k] * exp(-2 pi i k / n).
            double a = 2 * Math.PI * k / n, c = Math.cos(a), sn = Math.sin(a);
            double[] t = {c * o[0][k] + sn * o[1][k], c * o[1][k] - sn * o[0][k]};
            for (int p = 0; p < 2; p++) {
                out[p][k] = e[p][k] + t[p];
                out[p][k + h] = e[p][k] - t[p];
            }
        }
        return out;
    }
}
