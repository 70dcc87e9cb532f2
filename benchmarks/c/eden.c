/* Eden growth on the square lattice from one seed site, Eden A (site) or B (bond) rule.
 * usage: eden site|bond n_sites grid_side seed */
#include <string.h>

#include "common.h"

enum { EMPTY, OCCUPIED, PERIMETER };

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    int by_bond = strcmp(argv[1], "bond") == 0;
    int64_t n = atol(argv[2]), side = atol(argv[3]);
    rng_t rng;
    rng_seed(&rng, (uint64_t)atol(argv[4]));
    uint8_t *grid = checked(calloc((size_t)(side * side), 1));
    int32_t *perimeter = checked(malloc(sizeof(int32_t) * (size_t)(2 * n + 8)));
    int32_t *sites = checked(malloc(sizeof(int32_t) * 2 * (size_t)n));
    const int64_t step[4] = {side, -side, 1, -1};

    double started = cpu_now();
    int64_t centre = (side / 2) * side + side / 2;
    grid[centre] = OCCUPIED;
    sites[0] = sites[1] = 0;
    int64_t count = 0;
    for (int k = 0; k < 4; k++) {
        grid[centre + step[k]] = PERIMETER;
        perimeter[count++] = (int32_t)(centre + step[k]);
    }
    for (int64_t grown = 1; grown < n;) {
        int64_t index = (int64_t)(uniform(&rng) * (double)count);
        int64_t site = perimeter[index];
        if (by_bond) {
            int neighbours = 0;
            for (int k = 0; k < 4; k++) neighbours += grid[site + step[k]] == OCCUPIED;
            if (uniform(&rng) * 4.0 >= neighbours) continue;
        }
        perimeter[index] = perimeter[--count];
        grid[site] = OCCUPIED;
        int64_t x = site / side, y = site - x * side;
        sites[2 * grown] = (int32_t)(x - side / 2);
        sites[2 * grown + 1] = (int32_t)(y - side / 2);
        grown++;
        for (int k = 0; k < 4; k++) {
            int64_t next = site + step[k];
            if (grid[next] == EMPTY) {
                int64_t nx = next / side, ny = next - nx * side;
                if (nx == 0 || ny == 0 || nx == side - 1 || ny == side - 1) {
                    fprintf(stderr, "cluster reached the edge\n");
                    return 4;
                }
                grid[next] = PERIMETER;
                perimeter[count++] = (int32_t)next;
            }
        }
    }
    double cpu = cpu_now() - started;
    printf("{\"cpu_s\": %.6f, \"check\": %ld}\n", cpu, (long)count);
    return 0;
}
