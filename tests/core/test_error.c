// test_error.c: the one error style (core/error.h): per-thread detail, the
// range table naming every library's codes, messages for unknown codes.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bus/errors.h"
#include "core/error.h"
#include "data/data_error.h"
#include "dist/dist.h"
#include "metrics/refstats.h"
#include "models/lightningdit.h"
#include "models/sampler.h"
#include "models/toy_mlp.h"
#include "nn/backend.h"
#include "nn/cuda/vcuda.h"
#include "nn/device.h"
#include "nn/safetensors.h"
#include "store/store.h"

static void *thread_detail(void *arg) {
    int k = *(int *)arg;
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(vel_fail(VEL_EINVAL, "thread %d step %d", k, i), VEL_EINVAL);
        char want[64];
        snprintf(want, sizeof want, "thread %d step %d", k, i);
        if (strcmp(vel_error_detail(), want)) return (void *)1;
    }
    return NULL;
}

Test(error, detail_is_per_thread) {
    vel_fail(VEL_EIO, "main thread detail");
    pthread_t t[4];
    int ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = i;
        cr_assert_eq(pthread_create(&t[i], NULL, thread_detail, &ids[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r, "thread %d saw another thread's detail", i);
    }
    cr_assert_str_eq(vel_error_detail(), "main thread detail");
    vel_error_clear();
    cr_assert_str_eq(vel_error_detail(), "");
}

Test(error, errmsg_shows_detail_only_for_its_code) {
    vel_fail(STORE_ENOKEY, "index %d", 42);
    cr_assert_str_eq(vel_errmsg(STORE_ENOKEY), "store: index not in the cache: index 42");
    // Another code must not borrow the stale detail.
    cr_assert_str_eq(vel_errmsg(STORE_EHASH), vel_strerror(STORE_EHASH));
    cr_assert_str_eq(vel_errmsg(0), "ok");
}

// Every code every library defines, each with the library its range names.
static const struct {
    int code;
    const char *lib;
} k_codes[] = {
    {VEL_ENOMEM, "core"}, {VEL_EIO, "core"}, {VEL_EINVAL, "core"}, {VEL_EFORMAT, "core"},
    {VEL_ENOTFOUND, "core"}, {VEL_ESHAPE, "core"}, {VEL_ERANGE, "core"}, {VEL_ENONFINITE, "core"},
    {BUS_ETIMEOUT, "bus"}, {BUS_EHDRSIZE, "bus"}, {BUS_EMSGPACK, "bus"}, {BUS_EVERSION, "bus"},
    {BUS_EFIELD, "bus"}, {BUS_EDTYPE, "bus"}, {BUS_ERANK, "bus"}, {BUS_ESHAPE, "bus"},
    {BUS_EFRAMES, "bus"}, {BUS_ESIZE, "bus"}, {BUS_ETOOBIG, "bus"}, {BUS_EZMQ, "bus"},
    {BUS_EENDPOINT, "bus"}, {BUS_EINTR, "bus"}, {BUS_ENAME, "bus"}, {BUS_EEOS, "bus"},
    {BUS_EABORT, "bus"}, {BUS_EIDLE, "bus"}, {BUS_EUNEXPECTED, "bus"}, {BUS_EUNISSUED, "bus"},
    {BUS_EPORT, "bus"}, {BUS_EREMOTE, "bus"}, {BUS_EADDRINUSE, "bus"},
    {STORE_ENOTCACHE, "store"}, {STORE_ENOMETA, "store"}, {STORE_EMETA, "store"},
    {STORE_EHASH, "store"}, {STORE_ESHAPE, "store"}, {STORE_ERECSIZE, "store"},
    {STORE_EHEADER, "store"}, {STORE_EMISMATCH, "store"}, {STORE_ENOKEY, "store"},
    {STORE_ELMDB, "store"}, {STORE_EREADONLY, "store"}, {STORE_ENOFLIP, "store"},
    {STORE_ENOSTATS, "store"}, {STORE_EBUSY, "store"}, {STORE_EINDEX, "store"},
    {STORE_EKEY, "store"}, {STORE_EMAPCAP, "store"}, {STORE_ETRUNC, "store"},
    {STORE_ELABEL, "store"},
    {STORE_ECORRUPT, "store"},
    {CKPT_ETRUNC, "checkpoint"}, {CKPT_EJSON, "checkpoint"}, {CKPT_EHEADER, "checkpoint"},
    {CKPT_EDTYPE, "checkpoint"}, {CKPT_EOFFSETS, "checkpoint"}, {CKPT_ESIZE, "checkpoint"},
    {CKPT_EDUP, "checkpoint"}, {CKPT_EMISSING, "checkpoint"}, {CKPT_EEXTRA, "checkpoint"},
    {CKPT_ESHAPE, "checkpoint"}, {CKPT_EMETA, "checkpoint"}, {CKPT_ETOOBIG, "checkpoint"},
    {DATA_EMAGIC, "data"}, {DATA_ETRUNC, "data"}, {DATA_EGZIP, "data"}, {DATA_EDECODE, "data"},
    {DATA_EDIMS, "data"}, {DATA_EMISMATCH, "data"}, {DATA_EEMPTY, "data"},
    {DATA_ETRAILING, "data"}, {DATA_ENOPHOTOS, "data"}, {DATA_ELABEL, "data"},
    {DATA_EEMPTY_FILE, "data"}, {DATA_ENOTFILE, "data"},
    {TOY_EMODEL, "model"}, {TOY_EDIM, "model"}, {TOY_ECONFIG, "model"},
    {LDIT_ECONFIG, "model"}, {LDIT_EBATCH, "model"}, {LDIT_ELABEL, "model"},
    {SMP_ECONFIG, "model"},
    {VCUDA_ENODEV, "cuda"}, {VCUDA_ERUNTIME, "cuda"}, {VCUDA_ECUBLAS, "cuda"},
    {VCUDA_ECUDNN, "cuda"}, {VCUDA_EOOM, "cuda"},
    {NN_ENOCUDAOP, "cuda"}, {NN_ENOCUDABUILD, "cuda"}, {NN_EMIXED, "cuda"}, {NN_ENOCTX, "cuda"},
    {NN_ERANGES, "cuda"},
    {DEVICE_EBADNAME, "device"}, {DEVICE_ENOCUDA, "device"}, {DEVICE_ENOGPU, "device"},
    {DEVICE_ECONTEXT, "device"}, {DEVICE_ENOCTX, "device"}, {DEVICE_ECOPY, "device"},
    {DIST_EENV, "dist"}, {DIST_ENOLIB, "dist"}, {DIST_ECOMM, "dist"}, {DIST_ETIMEOUT, "dist"},
    {DIST_EBACKEND, "dist"},
    {METRICS_ENET, "metrics"},
    {METRICS_ESTATS, "metrics"},
};

Test(error, range_table_covers_every_code) {
    size_t n = sizeof k_codes / sizeof k_codes[0];
    for (size_t i = 0; i < n; i++) {
        int c = k_codes[i].code;
        const char *lib = vel_error_library(c);
        cr_assert(lib && !strcmp(lib, k_codes[i].lib), "code %d in range %s, expected %s", c,
                  lib ? lib : "(none)", k_codes[i].lib);
        const char *m = vel_strerror(c);
        cr_assert(!strstr(m, "error code"), "code %d has no message of its own: '%s'", c, m);
        for (size_t j = 0; j < i; j++) cr_assert_neq(k_codes[j].code, c, "code %d listed twice", c);
    }
    cr_assert_eq(BUS_ECODE_MIN, BUS_EADDRINUSE, "bus counters must cover the lowest bus code");
}

Test(error, ranges_meet_without_overlap) {
    static const struct { int code; const char *lib; } edges[] = {
        {-1, "core"}, {-99, "core"}, {-100, "bus"}, {-199, "bus"}, {-200, "store"},
        {-299, "store"}, {-300, "checkpoint"}, {-399, "checkpoint"}, {-400, "data"},
        {-499, "data"}, {-500, "model"}, {-599, "model"}, {-600, "cuda"}, {-649, "cuda"},
        {-650, "device"}, {-669, "device"}, {-670, "dist"}, {-699, "dist"}, {-700, "metrics"},
        {-799, "metrics"},
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        const char *lib = vel_error_library(edges[i].code);
        cr_assert(lib && !strcmp(lib, edges[i].lib), "code %d: %s, expected %s", edges[i].code,
                  lib ? lib : "(none)", edges[i].lib);
    }
    cr_assert_null(vel_error_library(0));
    cr_assert_null(vel_error_library(-800));
    cr_assert_null(vel_error_library(7));
}

Test(error, unknown_codes_get_a_message_naming_them) {
    cr_assert_str_eq(vel_strerror(0), "ok");
    cr_assert_str_eq(vel_strerror(-150), "bus: error code -150");
    cr_assert_str_eq(vel_strerror(-799), "metrics: error code -799");
    cr_assert_str_eq(vel_strerror(-5000), "unknown error code -5000");
    cr_assert_str_eq(vel_strerror(12), "unknown error code 12");
    // A detail recorded for an unknown code still shows.
    vel_fail(-5000, "from somewhere");
    cr_assert_str_eq(vel_errmsg(-5000), "unknown error code -5000: from somewhere");
}

Test(error, long_detail_is_truncated_not_overrun) {
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    vel_fail(VEL_EIO, "%s", big);
    size_t n = strlen(vel_error_detail());
    cr_assert(n > 900 && n < 1024, "detail length %zu", n);
    cr_assert(strlen(vel_errmsg(VEL_EIO)) < 1280);
}
