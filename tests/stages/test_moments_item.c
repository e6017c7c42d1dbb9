// test_moments_item.c: the `encode --model vae-folder` writer's checks on
// "moments" messages (stages/common/moments_item.h) against a real store.
// Each malformed message (wrong kind; "bad" missing, negative or too large;
// a tensor missing, of the wrong dtype, rank or shape; labels wrong; an
// index outside the folder or repeated; a label the folder contradicts; a
// NaN, an infinity, a negative sigma) is rejected with a reason and counted,
// writes nothing, and the next valid message is still written. At the end
// the store holds exactly the valid messages' records, bit for bit.
// Ids the source never issued are refused by the bus sink before this point
// (tests/bus/test_issued.c).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/common/moments_item.h"
#include "tests/util.h"

enum { C = 2, S = 2, PER = C * S * S, NIMG = 40 };

static char *dir;
static store *st;
static int32_t folder_labels[NIMG];
static const moments_folder folder = {.nimages = NIMG, .labels = folder_labels};

static void setup(void) {
    dir = test_tmpdir("moments_item");
    for (int i = 0; i < NIMG; i++) folder_labels[i] = i / 10;
    store_meta meta;
    char p[600];
    snprintf(p, sizeof p, "%s/store", dir);
    cr_assert_eq(store_meta_init(&meta, "0123456789abcdef", C, S, S, true, "folder:t", NIMG, "vae-v1"), 0);
    store_opts o = {.existing = STORE_EXISTING_SKIP};
    cr_assert_eq(store_create(&st, p, &meta, &o), 0, "%s", vel_error_detail());
}

static void teardown(void) {
    store_close(&st);
    rm_rf(dir);
    free(dir);
}

// The value a valid message carries for tensor k, record of index idx, element j.
static float val(int k, int idx, int j) { return (k & 1 ? 0.5f : -1.0f) + 0.01f * (float)(idx * PER + j) + (float)k; }

// How a message departs from a valid one.
typedef struct {
    const char *kind;       // NULL: "moments"
    int no_bad, bad;        // leave out "bad" / its value
    const char *drop;       // a tensor to leave out
    const char *retype;     // a tensor sent as i32 instead (or f32 for an i32 one)
    const char *reshape;    // a tensor sent with its last dimension one larger
    int poison_k, poison_j; // tensor k, element j of record 0 set to poison
    float poison;
    int wrong_label;        // record 0's label off by one
} twist;

static bus_msg *make(int first, int n, const int *idx_override, const twist *tw) {
    static const char *names[6] = {"mu", "sigma", "mu_flip", "sigma_flip", "labels", "index"};
    bus_msg *m = NULL;
    cr_assert_eq(bus_msg_new(&m, tw->kind ? tw->kind : "moments", 0, 7), 0);
    if (!tw->no_bad) cr_assert_eq(bus_msg_set_int(m, "bad", tw->bad), 0);
    int32_t idx[64], lab[64];
    for (int i = 0; i < n; i++) {
        idx[i] = idx_override ? idx_override[i] : first + i;
        lab[i] = idx[i] >= 0 && idx[i] < NIMG ? folder_labels[idx[i]] : 0;
    }
    if (tw->wrong_label) lab[0]++;
    for (int k = 0; k < 6 && n > 0; k++) {   // n = 0: "bad" alone, as from a job of unreadable images
        if (tw->drop && !strcmp(tw->drop, names[k])) continue;
        float f[64 * (PER + 1)];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < PER + 1; j++) f[i * (PER + 1) + j] = k < 4 ? val(k, idx[i], j) : 0;
        if (k < 4 && tw->poison_k == k && n > 0) f[tw->poison_j] = tw->poison;
        int re = tw->reshape && !strcmp(tw->reshape, names[k]), ty = tw->retype && !strcmp(tw->retype, names[k]);
        tensor t;
        if (k < 4) {
            float g[64 * (PER + 1)];   // packed rows of PER (+1 when reshaped)
            for (int i = 0; i < n; i++)
                memcpy(g + i * (PER + re), f + i * (PER + 1), sizeof(float) * (size_t)(PER + re));
            t = tensor_view(ty ? DT_I32 : DT_F32, g, 4, (int64_t[]){n, C, S, S + re});
            cr_assert_eq(bus_msg_add_tensor(m, names[k], &t), 0);
        } else {
            int32_t *v = k == 4 ? lab : idx;
            t = tensor_view(ty ? DT_F32 : DT_I32, v, re ? 2 : 1, (int64_t[]){n, 1});
            cr_assert_eq(bus_msg_add_tensor(m, names[k], &t), 0);
        }
    }
    return m;
}

TestSuite(moments_item, .init = setup, .fini = teardown, .timeout = 60);

Test(moments_item, malformed_rejected_counted_store_intact) {
    const float nan = NAN, inf = INFINITY;
    const twist none = {.poison_k = -1};
    struct { const char *what; twist tw; int n; const int *idx; } bad[] = {
        {"wrong kind", {.kind = "images", .poison_k = -1}, 2, NULL},
        {"job kind", {.kind = "job", .poison_k = -1}, 2, NULL},
        {"no bad", {.no_bad = 1, .poison_k = -1}, 2, NULL},
        {"negative bad", {.bad = -1, .poison_k = -1}, 2, NULL},
        {"bad too large", {.bad = MOMENTS_MAX_N + 1, .poison_k = -1}, 2, NULL},
        {"n + bad too large", {.bad = MOMENTS_MAX_N - 1, .poison_k = -1}, 2, NULL},
        {"nothing at all", {.poison_k = -1}, 0, NULL},
        {"no mu", {.drop = "mu", .poison_k = -1}, 2, NULL},
        {"no sigma_flip", {.drop = "sigma_flip", .poison_k = -1}, 2, NULL},
        {"no labels", {.drop = "labels", .poison_k = -1}, 2, NULL},
        {"mu as i32", {.retype = "mu", .poison_k = -1}, 2, NULL},
        {"sigma as i32", {.retype = "sigma", .poison_k = -1}, 2, NULL},
        {"index as f32", {.retype = "index", .poison_k = -1}, 2, NULL},
        {"labels as f32", {.retype = "labels", .poison_k = -1}, 2, NULL},
        {"mu_flip wrong shape", {.reshape = "mu_flip", .poison_k = -1}, 2, NULL},
        {"index rank 2", {.reshape = "index", .poison_k = -1}, 2, NULL},
        {"labels rank 2", {.reshape = "labels", .poison_k = -1}, 2, NULL},
        {"index past the folder", {.poison_k = -1}, 2, (const int[]){3, NIMG}},
        {"negative index", {.poison_k = -1}, 2, (const int[]){-1, 3}},
        {"index twice", {.poison_k = -1}, 3, (const int[]){4, 5, 4}},
        {"label not the folder's", {.wrong_label = 1, .poison_k = -1}, 2, NULL},
        {"NaN mu", {.poison_k = 0, .poison_j = 3, .poison = nan}, 2, NULL},
        {"inf sigma", {.poison_k = 1, .poison_j = PER + 1, .poison = inf}, 2, NULL},
        {"-inf mu_flip", {.poison_k = 2, .poison_j = 0, .poison = -inf}, 2, NULL},
        {"negative sigma_flip", {.poison_k = 3, .poison_j = 1, .poison = -0.5f}, 2, NULL},
    };
    int nbad = (int)(sizeof bad / sizeof bad[0]);
    cr_assert(nbad <= 30 && 33 <= NIMG);   // good records 0..nbad-1, bad ones at 30..
    moments_counts c = {0};
    char why[256];
    uint64_t have = 0;
    for (int i = 0; i < nbad; i++) {
        // A bad message's records would land at 30.. (or its own indices);
        // the good message after it writes index i alone, so any record a
        // rejected message wrote shows in the count and in the final scan.
        bus_msg *m = make(30, bad[i].n, bad[i].idx, &bad[i].tw);
        why[0] = 0;
        int r = moments_item_put(st, &folder, m, &c, why, sizeof why);
        bus_msg_destroy(&m);
        cr_expect_eq(r, 1, "%s: not rejected (%d)", bad[i].what, r);
        cr_expect(why[0] != 0, "%s: no reason", bad[i].what);
        cr_expect_eq(c.rejected, i + 1, "%s: rejected count %lld", bad[i].what, (long long)c.rejected);
        cr_assert_eq(store_count(st, &have), 0);
        cr_expect_eq(have, (uint64_t)i, "%s: the store holds %llu records, not %d", bad[i].what,
                     (unsigned long long)have, i);
        m = make(i, 1, NULL, &none);   // the writer goes on
        cr_expect_eq(moments_item_put(st, &folder, m, &c, why, sizeof why), 0, "after %s: %s", bad[i].what, why);
        bus_msg_destroy(&m);
    }
    // An item whose images were all unreadable carries only "bad".
    twist allbad = {.bad = 3, .poison_k = -1};
    bus_msg *m = make(0, 0, NULL, &allbad);
    cr_expect_eq(moments_item_put(st, &folder, m, &c, why, sizeof why), 0, "%s", why);
    bus_msg_destroy(&m);
    cr_expect_eq(c.items, nbad + 1);
    cr_expect_eq(c.records, nbad);
    cr_expect_eq(c.bad, 3, "bad of rejected items must not count: %lld", (long long)c.bad);
    cr_expect_eq(c.rejected, nbad);
    cr_assert_eq(store_count(st, &have), 0);
    cr_assert_eq(have, (uint64_t)nbad);
    for (int i = 0; i < NIMG; i++) {
        float mu[PER], sg[PER], muf[PER], sgf[PER];
        int32_t lab = -7;
        int e = store_get(st, mu, sg, &lab, (uint64_t)i, false);
        if (i >= nbad) { cr_expect_neq(e, 0, "index %d was written by a rejected message", i); continue; }
        cr_assert_eq(e, 0, "index %d: %s", i, vel_strerror(e));
        cr_assert_eq(store_get(st, muf, sgf, &lab, (uint64_t)i, true), 0);
        cr_expect_eq(lab, folder_labels[i]);
        for (int j = 0; j < PER; j++) {
            cr_expect_eq(mu[j], val(0, i, j), "index %d mu[%d]", i, j);
            cr_expect_eq(sg[j], val(1, i, j), "index %d sigma[%d]", i, j);
            cr_expect_eq(muf[j], val(2, i, j), "index %d mu_flip[%d]", i, j);
            cr_expect_eq(sgf[j], val(3, i, j), "index %d sigma_flip[%d]", i, j);
        }
    }
}
