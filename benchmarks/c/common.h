/* Shared by the C references of benchmarks/models.py: the random numbers (xoshiro256+,
 * seeded by splitmix64, doubles from the top 53 bits: the generator class SimLab's
 * kernels use), a CPU-time clock and the reading of integer lists from stdin. */
#ifndef SIMLAB_BENCH_COMMON_H
#define SIMLAB_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    uint64_t s[4];
} rng_t;

static inline void rng_seed(rng_t *rng, uint64_t seed) {
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9E3779B97F4A7C15ULL;
        uint64_t v = z;
        v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ULL;
        v = (v ^ (v >> 27)) * 0x94D049BB133111EBULL;
        rng->s[i] = v ^ (v >> 31);
    }
}

static inline double uniform(rng_t *rng) {
    uint64_t *s = rng->s;
    uint64_t result = s[0] + s[3];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return (double)(result >> 11) * (1.0 / 9007199254740992.0);
}

static inline double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads a count then that many integers from stdin (the checkpoints of a run). */
static inline int64_t *read_ints(int *count) {
    if (scanf("%d", count) != 1) exit(2);
    int64_t *values = malloc(sizeof(int64_t) * (size_t)(*count > 0 ? *count : 1));
    for (int i = 0; i < *count; i++)
        if (scanf("%ld", &values[i]) != 1) exit(2);
    return values;
}

static inline void *checked(void *p) {
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(3);
    }
    return p;
}

#endif
