/* 2D Ising model (J = 1, periodic L x L, cold start) at one temperature: typewriter
 * Metropolis sweeps, or Wolff sweeps of a fixed number of clusters set by a pilot run of
 * 5 N flipped spins; energy and magnetisation per spin recorded after every sweep.
 * usage: ising metropolis|wolff L sweeps temperature seed */
#include <math.h>
#include <string.h>

#include "common.h"

static void measure(const int8_t *s, int L, double *e, double *m) {
    long bonds = 0, total = 0;
    for (int i = 0; i < L; i++) {
        int down = i < L - 1 ? i + 1 : 0;
        for (int j = 0; j < L; j++) {
            int right = j < L - 1 ? j + 1 : 0;
            int v = s[i * L + j];
            bonds += v * (s[down * L + j] + s[i * L + right]);
            total += v;
        }
    }
    *e = -(double)bonds / (L * L);
    *m = (double)total / (L * L);
}

static long flip_cluster(int8_t *s, int L, double add, rng_t *rng, int32_t *stack) {
    int seed = (int)(uniform(rng) * L * L);
    int8_t aligned = s[seed];
    s[seed] = (int8_t)-aligned;
    stack[0] = seed;
    long top = 1, size = 1;
    while (top > 0) {
        int site = stack[--top];
        int i = site / L, j = site - i * L;
        int next[4] = {(i > 0 ? i - 1 : L - 1) * L + j, (i < L - 1 ? i + 1 : 0) * L + j,
                       i * L + (j > 0 ? j - 1 : L - 1), i * L + (j < L - 1 ? j + 1 : 0)};
        for (int k = 0; k < 4; k++) {
            if (s[next[k]] == aligned && uniform(rng) < add) {
                s[next[k]] = (int8_t)-aligned;
                stack[top++] = next[k];
                size++;
            }
        }
    }
    return size;
}

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    int wolff = strcmp(argv[1], "wolff") == 0;
    int L = atoi(argv[2]);
    long sweeps = atol(argv[3]);
    double beta = 1.0 / atof(argv[4]);
    rng_t rng;
    rng_seed(&rng, (uint64_t)atol(argv[5]));
    int8_t *s = checked(malloc((size_t)(L * L)));
    int32_t *stack = checked(malloc(sizeof(int32_t) * (size_t)(L * L)));
    double *energy = checked(malloc(sizeof(double) * (size_t)sweeps));
    double *magnetization = checked(malloc(sizeof(double) * (size_t)sweeps));
    memset(s, 1, (size_t)(L * L));

    double started = cpu_now();
    long moves = 0;
    if (wolff) {
        double add = 1.0 - exp(-2.0 * beta);
        long clusters = 0, flips = 0;
        while (flips < 5L * L * L) {
            flips += flip_cluster(s, L, add, &rng, stack);
            clusters++;
        }
        long per_sweep = lround((double)L * L * clusters / flips);
        if (per_sweep < 1) per_sweep = 1;
        for (long sweep = 0; sweep < sweeps; sweep++) {
            for (long c = 0; c < per_sweep; c++) moves += flip_cluster(s, L, add, &rng, stack);
            measure(s, L, &energy[sweep], &magnetization[sweep]);
        }
    } else {
        double accept_2 = exp(-4.0 * beta), accept_4 = exp(-8.0 * beta);
        for (long sweep = 0; sweep < sweeps; sweep++) {
            for (int i = 0; i < L; i++) {
                int up = i > 0 ? i - 1 : L - 1, down = i < L - 1 ? i + 1 : 0;
                for (int j = 0; j < L; j++) {
                    int left = j > 0 ? j - 1 : L - 1, right = j < L - 1 ? j + 1 : 0;
                    int sh = s[i * L + j] * (s[up * L + j] + s[down * L + j] + s[i * L + left] +
                                             s[i * L + right]);
                    if (sh <= 0 || (sh == 2 && uniform(&rng) < accept_2) ||
                        (sh == 4 && uniform(&rng) < accept_4)) {
                        s[i * L + j] = (int8_t)-s[i * L + j];
                        moves++;
                    }
                }
            }
            measure(s, L, &energy[sweep], &magnetization[sweep]);
        }
    }
    double cpu = cpu_now() - started;
    double mean_e = 0.0;
    for (long k = 0; k < sweeps; k++) mean_e += energy[k];
    printf("{\"cpu_s\": %.6f, \"check\": %.6f, \"moves\": %ld}\n", cpu, mean_e / sweeps, moves);
    return 0;
}
