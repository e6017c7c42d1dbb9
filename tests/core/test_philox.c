// test_philox.c: Philox4x32-10 against the Random123 known-answer vectors
// (kat_vectors, philox4x32 10 rounds), then the uniform/normal derivations of
// philox.h: exact formulas, offset/thread independence, moments.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "tests/util.h"

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t got[4];
    philox4x32_10(got, ctr, key);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(got[i], want[i], "word %d: got %08x want %08x", i, got[i], want[i]);
}

Test(philox, kat_zero) {
    kat((uint32_t[]){0, 0, 0, 0}, (uint32_t[]){0, 0},
        (uint32_t[]){0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
}

Test(philox, kat_all_ones) {
    kat((uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        (uint32_t[]){0xffffffffu, 0xffffffffu},
        (uint32_t[]){0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
}

Test(philox, kat_pi_digits) {
    kat((uint32_t[]){0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
        (uint32_t[]){0xa4093822u, 0x299f31d0u},
        (uint32_t[]){0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

Test(philox, block_layout) {
    // philox_block maps (seed, stream, block) to (ctr, key) as documented.
    uint64_t seed = 0x299f31d0a4093822ull, block = 0x85a308d3243f6a88ull;
    uint32_t a[4], b[4];
    philox_block(a, seed, 0x13198a2eu, block);
    philox4x32_10(b, (uint32_t[]){0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0},
                  (uint32_t[]){0xa4093822u, 0x299f31d0u});
    cr_expect_eq(memcmp(a, b, sizeof a), 0);
}

Test(philox, uniform_formula) {
    float u[10];
    philox_uniform(u, 10, 42, 7, 0);
    for (int i = 0; i < 10; i++) {
        uint32_t x[4];
        philox_block(x, 42, 7, (uint64_t)i / 4);
        float want = (float)((x[i % 4] >> 8) * (1.0 / 16777216.0));
        cr_expect_eq(u[i], want, "u[%d] %.9g want %.9g", i, u[i], want);
        cr_expect(u[i] >= 0.0f && u[i] < 1.0f);
    }
}

Test(philox, normal_formula) {
    float z[8];
    philox_normal(z, 8, 1234567, 3, 0);
    for (int b = 0; b < 2; b++) {
        uint32_t x[4];
        philox_block(x, 1234567, 3, (uint64_t)b);
        for (int j = 0; j < 4; j += 2) {
            double u1 = ((x[j] >> 8) + 1) / 16777216.0, u2 = (x[j + 1] >> 8) / 16777216.0;
            double r = sqrt(-2 * log(u1));
            cr_expect_eq(z[4 * b + j], (float)(r * cos(2 * M_PI * u2)));
            cr_expect_eq(z[4 * b + j + 1], (float)(r * sin(2 * M_PI * u2)));
        }
    }
}

// A fill at any offset equals the corresponding slice of one big fill, and
// changing the stream or seed changes the numbers.
Test(philox, offsets_and_streams) {
    enum { N = 1000 };
    float all[N], part[N];
    philox_normal(all, N, 99, 1, 0);
    const int offs[] = {1, 2, 3, 5, 333, 997};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        int o = offs[k];
        philox_normal(part, N - o, 99, 1, (uint64_t)o);
        cr_expect_eq(memcmp(part, all + o, (size_t)(N - o) * sizeof(float)), 0, "offset %d", o);
        philox_uniform(part, 3, 99, 1, (uint64_t)o);
        float ref[N];
        philox_uniform(ref, o + 3, 99, 1, 0);
        cr_expect_eq(memcmp(part, ref + o, 3 * sizeof(float)), 0, "uniform offset %d", o);
    }
    philox_normal(part, N, 99, 2, 0);
    int same = 0;
    for (int i = 0; i < N; i++) same += part[i] == all[i];
    cr_expect_lt(same, 5, "stream 2 repeats stream 1 (%d equal)", same);
    philox_normal(part, N, 100, 1, 0);
    same = 0;
    for (int i = 0; i < N; i++) same += part[i] == all[i];
    cr_expect_lt(same, 5, "seed 100 repeats seed 99 (%d equal)", same);
}

Test(philox, thread_count_independent) {
    int64_t n = 200003;   // large enough to take the parallel path
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    philox_normal(a, n, 5, 0, 17);
    omp_set_num_threads(2);
    philox_normal(b, n, 5, 0, 17);
    cr_expect_eq(memcmp(a, b, (size_t)n * sizeof(float)), 0);
    omp_set_num_threads(1);
    philox_uniform(a, n, 5, 0, 3);
    omp_set_num_threads(2);
    philox_uniform(b, n, 5, 0, 3);
    cr_expect_eq(memcmp(a, b, (size_t)n * sizeof(float)), 0);
    omp_set_num_threads(saved);
    free(a);
    free(b);
}

// 1e6 draws: the mean has standard error 1e-3 and the variance about 1.4e-3
// (normal) / 2.9e-4 (uniform, var 1/12), so 5-sigma bounds below.
Test(philox, moments) {
    int64_t n = 1000000;
    float *z = malloc((size_t)n * sizeof(float));
    philox_normal(z, n, 2024, 0, 0);
    double s = 0, s2 = 0, s4 = 0;
    for (int64_t i = 0; i < n; i++) s += z[i];
    double mean = s / n;
    for (int64_t i = 0; i < n; i++) {
        double d = z[i] - mean;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    double var = s2 / n, kurt = s4 / n / (var * var);
    cr_expect(fabs(mean) < 5e-3, "normal mean %g", mean);
    cr_expect(fabs(var - 1) < 7e-3, "normal var %g", var);
    cr_expect(fabs(kurt - 3) < 0.05, "normal kurtosis %g", kurt);

    philox_uniform(z, n, 2024, 1, 0);
    s = s2 = 0;
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        s += z[i];
        s2 += (double)z[i] * z[i];
        lo = fminf(lo, z[i]);
        hi = fmaxf(hi, z[i]);
    }
    mean = s / n;
    var = s2 / n - mean * mean;
    cr_expect(fabs(mean - 0.5) < 1.5e-3, "uniform mean %g", mean);
    cr_expect(fabs(var - 1.0 / 12) < 1.5e-3, "uniform var %g", var);
    cr_expect(lo >= 0 && hi < 1, "uniform range [%g, %g]", lo, hi);
    free(z);
}

// Against the independent Python implementation of the whole contract
// (tests/ref/gen_optim_philox.py): raw words, uniforms and normals, at
// offsets that are not block-aligned, a 64-bit seed, stream 2^32-1 and block
// indices above 2^32. Bit-exact: Python's math.log/cos/sin and glibc's agree
// here (a last-bit disagreement would show up as a mismatch count).
Test(philox, python_reference) {
    int64_t n, ncases;
    double *cases = ref_f64("optim_philox", "cases", &ncases);
    cr_assert_eq(ncases % 6, 0);
    cr_assert_eq(ncases / 6, 3);
    for (int k = 0; k < ncases / 6; k++) {
        const double *c = cases + 6 * k;
        uint64_t seed = ((uint64_t)c[0] << 32) | (uint64_t)c[1];
        uint32_t stream = (uint32_t)c[2];
        uint64_t offset = ((uint64_t)c[3] << 32) | (uint64_t)c[4];
        int64_t cnt = (int64_t)c[5];
        char name[32];
        snprintf(name, sizeof name, "words_%d", k);
        double *w = ref_f64("optim_philox", name, &n);
        cr_assert_eq(n, cnt);
        for (int64_t i = 0; i < cnt; i++) {
            uint32_t x[4];
            uint64_t idx = offset + (uint64_t)i;
            philox_block(x, seed, stream, idx / 4);
            cr_assert_eq((double)x[idx % 4], w[i], "case %d word %lld", k, (long long)i);
        }
        float *got = malloc((size_t)cnt * sizeof(float));
        snprintf(name, sizeof name, "uniform_%d", k);
        float *u = ref_f32("optim_philox", name, &n);
        philox_uniform(got, cnt, seed, stream, offset);
        cr_expect_eq(memcmp(got, u, (size_t)cnt * sizeof(float)), 0, "case %d uniforms", k);
        snprintf(name, sizeof name, "normal_%d", k);
        float *z = ref_f32("optim_philox", name, &n);
        philox_normal(got, cnt, seed, stream, offset);
        int bad = 0;
        for (int64_t i = 0; i < cnt; i++) bad += memcmp(&got[i], &z[i], sizeof(float)) != 0;
        cr_expect_eq(bad, 0, "case %d: %d of %lld normals differ from the Python reference", k, bad,
                     (long long)cnt);
        free(got); free(w); free(u); free(z);
    }
    free(cases);
}
