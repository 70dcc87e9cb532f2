/* Independent simple random walkers on Z^d, all advanced one step at a time; R^2 and R^4
 * summed at the checkpoint steps read from stdin, the first few paths stored.
 * usage: random_walk walkers dimension steps tracked stride seed < checkpoints */
#include "common.h"

int main(int argc, char **argv) {
    if (argc != 7) return 2;
    long W = atol(argv[1]), steps = atol(argv[3]), tracked = atol(argv[4]);
    int d = atoi(argv[2]);
    long stride = atol(argv[5]);
    rng_t rng;
    rng_seed(&rng, (uint64_t)atol(argv[6]));
    int n_checkpoints;
    int64_t *checkpoints = read_ints(&n_checkpoints);
    int64_t *pos = checked(calloc((size_t)(W * d), sizeof(int64_t)));
    double *sum_r2 = checked(calloc((size_t)n_checkpoints, sizeof(double)));
    double *sum_r4 = checked(calloc((size_t)n_checkpoints, sizeof(double)));
    long points = steps / stride + 1;
    int32_t *paths = checked(calloc((size_t)(tracked * points * d), sizeof(int32_t)));

    double started = cpu_now();
    int next = 0;
    for (long step = 1; step <= steps; step++) {
        for (long w = 0; w < W; w++) {
            int move = (int)(uniform(&rng) * 2 * d);
            pos[w * d + (move >> 1)] += (move & 1) ? 1 : -1;
        }
        if (next < n_checkpoints && checkpoints[next] == step) {
            for (long w = 0; w < W; w++) {
                double r2 = 0.0;
                for (int a = 0; a < d; a++) r2 += (double)(pos[w * d + a] * pos[w * d + a]);
                sum_r2[next] += r2;
                sum_r4[next] += r2 * r2;
            }
            next++;
        }
        if (step % stride == 0)
            for (long w = 0; w < tracked; w++)
                for (int a = 0; a < d; a++)
                    paths[(w * points + step / stride) * d + a] = (int32_t)pos[w * d + a];
    }
    double cpu = cpu_now() - started;
    printf("{\"cpu_s\": %.6f, \"check\": %.6f}\n", cpu, sum_r2[n_checkpoints - 1] / W);
    return 0;
}
