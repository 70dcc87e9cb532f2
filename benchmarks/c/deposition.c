/* Random or ballistic deposition on a periodic substrate of L columns for T monolayers,
 * W^2 recorded at the checkpoint times read from stdin.
 * usage: deposition random|ballistic L T samples seed < checkpoints */
#include <string.h>

#include "common.h"

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    int ballistic = strcmp(argv[1], "ballistic") == 0;
    int64_t L = atol(argv[2]), T = atol(argv[3]), samples = atol(argv[4]);
    rng_t rng;
    rng_seed(&rng, (uint64_t)atol(argv[5]));
    int n_checkpoints;
    int64_t *times = read_ints(&n_checkpoints);
    int64_t *h = checked(malloc(sizeof(int64_t) * (size_t)L));
    double *w2 = checked(calloc((size_t)n_checkpoints, sizeof(double)));
    (void)T;

    double started = cpu_now();
    for (int64_t sample = 0; sample < samples; sample++) {
        memset(h, 0, sizeof(int64_t) * (size_t)L);
        int64_t done = 0;
        for (int c = 0; c < n_checkpoints; c++) {
            int64_t target = times[c] * L;
            for (; done < target; done++) {
                int64_t col = (int64_t)(uniform(&rng) * (double)L);
                if (ballistic) {
                    int64_t left = h[col > 0 ? col - 1 : L - 1];
                    int64_t right = h[col < L - 1 ? col + 1 : 0];
                    int64_t top = h[col] + 1;
                    if (left > top) top = left;
                    if (right > top) top = right;
                    h[col] = top;
                } else {
                    h[col]++;
                }
            }
            double mean = 0.0, var = 0.0;
            for (int64_t i = 0; i < L; i++) mean += (double)h[i];
            mean /= (double)L;
            for (int64_t i = 0; i < L; i++) var += ((double)h[i] - mean) * ((double)h[i] - mean);
            w2[c] += var / (double)L;
        }
    }
    double cpu = cpu_now() - started;
    printf("{\"cpu_s\": %.6f, \"check\": %.6f}\n", cpu, w2[n_checkpoints - 1] / (double)samples);
    return 0;
}
