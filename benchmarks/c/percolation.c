/* Newman-Ziff site percolation on the open L x L square lattice: per sample an inside-out
 * Fisher-Yates order, then occupation in that order with a union-find (union by size, path
 * halving), tracking the largest cluster and the first top-bottom spanning cluster.
 * usage: percolation L samples seed */
#include "common.h"

static inline int32_t find(int32_t *parent, int32_t site) {
    while (parent[site] != site) {
        parent[site] = parent[parent[site]];
        site = parent[site];
    }
    return site;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int32_t L = atoi(argv[1]);
    int64_t samples = atol(argv[2]);
    rng_t rng;
    rng_seed(&rng, (uint64_t)atol(argv[3]));
    int32_t N = L * L;
    int32_t *order = checked(malloc(sizeof(int32_t) * (size_t)N));
    int32_t *parent = checked(malloc(sizeof(int32_t) * (size_t)N));
    int32_t *size = checked(malloc(sizeof(int32_t) * (size_t)N));
    uint8_t *touches = checked(malloc((size_t)N));
    uint8_t *occupied = checked(malloc((size_t)N));
    double *largest_sum = checked(calloc((size_t)N + 1, sizeof(double)));
    int64_t *spanning_at = checked(malloc(sizeof(int64_t) * (size_t)samples));

    double started = cpu_now();
    for (int64_t sample = 0; sample < samples; sample++) {
        for (int32_t i = 0; i < N; i++) {
            int32_t j = (int32_t)(uniform(&rng) * (double)(i + 1));
            order[i] = order[j];
            order[j] = i;
        }
        for (int32_t i = 0; i < N; i++) occupied[i] = 0;
        int32_t largest = 0;
        int64_t spanned = -1;
        for (int32_t n = 1; n <= N; n++) {
            int32_t site = order[n - 1];
            int32_t row = site / L, col = site - row * L;
            occupied[site] = 1;
            parent[site] = site;
            size[site] = 1;
            touches[site] = (row == 0 ? 1 : 0) | (row == L - 1 ? 2 : 0);
            int32_t root = site;
            int32_t others[4];
            int m = 0;
            if (row > 0) others[m++] = site - L;
            if (row < L - 1) others[m++] = site + L;
            if (col > 0) others[m++] = site - 1;
            if (col < L - 1) others[m++] = site + 1;
            for (int k = 0; k < m; k++) {
                if (!occupied[others[k]]) continue;
                int32_t other = find(parent, others[k]);
                if (other == root) continue;
                if (size[other] > size[root]) {
                    int32_t swap = root;
                    root = other;
                    other = swap;
                }
                parent[other] = root;
                size[root] += size[other];
                touches[root] |= touches[other];
            }
            if (size[root] > largest) largest = size[root];
            if (spanned < 0 && touches[root] == 3) spanned = n;
            largest_sum[n] += largest;
        }
        spanning_at[sample] = spanned;
    }
    double cpu = cpu_now() - started;
    double mean = 0.0;
    for (int64_t s = 0; s < samples; s++) mean += (double)spanning_at[s];
    printf("{\"cpu_s\": %.6f, \"check\": %.6f}\n", cpu, mean / (double)samples / N);
    return 0;
}
