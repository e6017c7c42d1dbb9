// store.h: the LMDB latent cache (docs/ARCHITECTURE.md, "The store"), the one API the
// stages use. One LMDB environment per cache directory; key = image index as
// 8-byte big-endian (cursor order = dataset order); value = a msgpack record
// header + raw little-endian f32 latent mean and sigma (C,H,W) [+ the mean and
// sigma of the horizontally flipped image]; key "__meta__" holds the cache's
// metadata (store_meta). Record and meta codecs: store/record.h, store/meta.h.
//
// Not here: models, the encoder, sampling of z = mu + sigma*eps (the train
// stage draws eps itself), anything about the bus.
//
// Processes and threads:
// - Many reader processes may run beside writers. Writers in several
//   processes (encode split by index range) serialize on LMDB's write lock
//   (a process-shared robust mutex: a writer killed mid-transaction leaves
//   nothing visible and does not block the next one).
// - The environment is opened with MDB_NOTLS, so a read transaction
//   (store_txn) may be used by a thread other than the one that began it,
//   but one store_txn must not be used by two threads at once. Writes
//   (store_put_batch, store_set_stats) come from one thread at a time.
// - Never fork() with a store open and use it in the child (LMDB rule):
//   open the store after fork.
// - The map grows on MDB_MAP_FULL (grow, retry the whole batch). Growing needs
//   no read transaction of this process to be open (STORE_EBUSY otherwise).
//
// Typical use:
//   encode (any number of processes, each a range [first, end)):
//     store_meta_init(&m, ckpt_hash, C, H, W, has_flip, "fashion-mnist", N, version);
//     store_create(&s, dir, &m, NULL);
//     store_missing(s, first, end, &todo, &n);       // resume: only what is absent
//     ... encode a batch ...; store_put_batch(s, recs, B, NULL);
//     then ONE process, after all ranges are done:
//     store_compute_stats(s, mean, std, 10000, seed); store_set_stats(s, mean, std);
//   train:
//     store_open(&s, dir, ckpt_hash, shape, NULL); store_list_indices(s, &idx, &n);
//     per step: store_read_batch(s, mu, sigma, labels, batch_idx, flips, B);
//     z = mu + sigma * eps; store_normalise(z, z, store_get_meta(s), B);
//   sample/decode: store_denormalise(z, zn, meta, B) before the decoder.
//
// Errors: 0 or a negative code; store range -200..-299 plus core/base.h codes;
// vel_strerror() (core/error.h) names the code and vel_error_detail() gives the
// detail of the latest failure in the calling thread (which file, index,
// field); vel_errmsg(rc) prints both.
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"
#include "core/tensor.h"

enum {
    STORE_ENOTCACHE = -201, // path missing, not a directory, or not LMDB
    STORE_ENOMETA = -202,   // an LMDB env without a __meta__ record
    STORE_EMETA = -203,     // __meta__ malformed or incompatible (flip, dataset)
    STORE_EHASH = -204,     // tokenizer checkpoint hash differs from expected
    STORE_ESHAPE = -205,    // latent shape or dtype differs from expected
    STORE_ERECSIZE = -206,  // record size disagrees with its header or the meta
    STORE_EHEADER = -207,   // record header is not the expected msgpack map
    STORE_EMISMATCH = -208, // put of an existing index with different content
    STORE_ENOKEY = -209,    // index not in the cache
    STORE_ELMDB = -210,     // other LMDB failure (detail in vel_error_detail)
    STORE_EREADONLY = -211, // write through a store opened read-only
    STORE_ENOFLIP = -212,   // flipped variant asked for, cache has none
    STORE_ENOSTATS = -213,  // normalisation stats not computed yet
    STORE_EBUSY = -214,     // map must be resized while a read txn is open
    STORE_EINDEX = -215,    // index above STORE_MAX_INDEX
    STORE_EKEY = -216,      // a key that is neither an index nor __meta__
    STORE_EMAPCAP = -217,   // map would have to grow past opts.max_map_size
    STORE_ETRUNC = -218,    // data.mdb shorter than the pages LMDB says it holds
    STORE_ELABEL = -219,    // a record's label outside [0, meta.num_classes)
    STORE_ECORRUPT = -220,  // LMDB found a damaged page, or counts no file could hold
};

// Indices stay below 2^48 so that no index key can equal the 8 bytes
// "__meta__" (0x5f5f6d6574615f5f).
#define STORE_MAX_INDEX ((UINT64_C(1) << 48) - 1)
#define STORE_MAX_CHANNELS 1024
#define STORE_STR_MAX 128      // strings in the meta, NUL included

// The cache's metadata (record "__meta__"). Plain value type, no pointers.
typedef struct {
    char tokenizer_hash[STORE_STR_MAX]; // checkpoint hash of the tokenizer
    int64_t shape[3];                   // latent (C, H, W)
    dtype_t dtype;                      // DT_F32 (the only one supported)
    bool has_flip;                      // records carry the flipped variant
    bool has_stats;                     // mean/std below are valid
    float mean[STORE_MAX_CHANNELS];     // per channel, first C used
    float std[STORE_MAX_CHANNELS];
    char dataset[STORE_STR_MAX];        // dataset name
    uint64_t dataset_size;              // images in the dataset
    char code_version[STORE_STR_MAX];   // version of the code that encoded
} store_meta;

// Fills hash/dataset/version strings (truncating is an error: VEL_ERANGE)
// and the shape; dtype f32, no stats.
int store_meta_init(store_meta *m, const char *tokenizer_hash, int64_t C, int64_t H,
                    int64_t W, bool has_flip, const char *dataset, uint64_t dataset_size,
                    const char *code_version);
int64_t store_meta_numel(const store_meta *m);   // C*H*W

// One record to write; arrays are (C,H,W) f32, borrowed for the call.
typedef struct {
    uint64_t index;
    int32_t label;             // class label, -1 for none
    const float *mu, *sigma;
    const float *mu_flip, *sigma_flip; // required iff meta.has_flip, else NULL
} store_record;

// A record as it lies in the map: borrowed, valid until the read transaction
// (store_txn or iterator) that produced it ends. The tensors are raw
// little-endian f32 bytes and may be unaligned (LMDB aligns small values to
// 2 bytes only): copy them with memcpy or store_view_copy, never cast.
typedef struct {
    uint64_t index;
    int32_t label;
    bool has_flip;
    int64_t numel;              // C*H*W
    const void *mu, *sigma;     // numel f32 each
    const void *mu_flip, *sigma_flip; // NULL when !has_flip
} store_view;

typedef enum {
    STORE_EXISTING_VERIFY = 0, // an existing index must hold identical data
    STORE_EXISTING_SKIP = 1,   // an existing index is left as it is
} store_existing;

// Options; a zeroed struct (or NULL) gives the defaults.
typedef struct {
    size_t map_size;          // initial map size in bytes (0: 64 MiB)
    size_t max_map_size;      // cap on growth (0: 4 TiB)
    store_existing existing;  // what put does with an index already present
    bool nosync;              // MDB_NOSYNC: a process crash loses nothing,
                              // an OS crash may lose the latest batches
    unsigned max_readers;     // LMDB reader slots (0: 126)
} store_opts;

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct store_iter store_iter;

// Creates the cache at path (the directory is made if missing) or opens an
// existing one for writing. An existing cache must agree with meta on
// tokenizer hash (STORE_EHASH), shape/dtype (STORE_ESHAPE), flip layout,
// dataset name and size (STORE_EMETA); its stats are kept. Safe to call from
// several processes at once. Caller closes with store_close.
int store_create(store **out, const char *path, const store_meta *meta, const store_opts *opts);

// Opens an existing cache read-only. Creates nothing, except LMDB's
// lock.mdb in a valid cache directory that lacks one (readers need it). expect_hash and
// expect_shape (C,H,W) are checked when non-NULL.
int store_open(store **out, const char *path, const char *expect_hash,
               const int64_t *expect_shape, const store_opts *opts);
// Opens an existing cache for writing, without needing its meta in advance.
int store_open_rw(store **out, const char *path, const char *expect_hash,
                  const int64_t *expect_shape, const store_opts *opts);

void store_close(store **s);   // NULL-safe; ends nothing: end txns first

// The meta as read at open (or after the last reload/set_stats). Borrowed,
// valid until close or the next reload.
const store_meta *store_get_meta(const store *s);
int store_meta_reload(store *s);   // re-read __meta__ (another process wrote stats)
// Writes per-channel mean and std (C floats each) into __meta__.
int store_set_stats(store *s, const float *mean, const float *std);

// Number of records (the meta not counted).
int store_count(store *s, uint64_t *n);
// Current LMDB map size in bytes (grows on demand).
int store_map_size(store *s, size_t *bytes);

typedef struct {
    size_t written;   // new records
    size_t skipped;   // already present (identical, when verifying)
    uint64_t mismatch_index; // set when STORE_EMISMATCH is returned
} store_put_result;

// Writes n records in ONE write transaction: all of them become visible
// together or none do. Existing indices: opts.existing. On STORE_EMISMATCH
// nothing of the batch is written. res may be NULL. Keep batches to a few
// thousand records: LMDB refuses a transaction that dirties more than ~128k
// pages (MDB_TXN_FULL, reported as STORE_ELMDB), i.e. ~500 MB.
int store_put_batch(store *s, const store_record *recs, size_t n, store_put_result *res);

// The indices in [first, end) that are not in the cache, ascending; *out is
// malloc'ed (NULL when none), caller frees with free(). For resuming writers.
// end - first <= STORE_MISSING_MAX_RANGE (VEL_ERANGE otherwise).
#define STORE_MISSING_MAX_RANGE (UINT64_C(1) << 28)
int store_missing(store *s, uint64_t first, uint64_t end, uint64_t **out, size_t *n);

// One record copied out: mu, sigma (C,H,W) each (either may be NULL), label
// may be NULL. flip picks the flipped variant (STORE_ENOFLIP if none).
int store_get(store *s, float *mu, float *sigma, int32_t *label, uint64_t index, bool flip);

// A training batch: mu, sigma (B,C,H,W) (either may be NULL), labels (B) or
// NULL; idx (B) any order, repeats allowed; flip (B) or NULL (all 0) picks the
// flipped variant per item. Copies straight from the map in one read txn.
int store_read_batch(store *s, float *mu, float *sigma, int32_t *labels,
                     const uint64_t *idx, const uint8_t *flip, size_t B);

// Read transactions for callers that want borrowed views or several batches
// from one snapshot. End every txn before store_close.
int store_txn_begin(store *s, store_txn **out);
void store_txn_end(store_txn **t);   // NULL-safe
int store_txn_view(store_txn *t, store_view *out, uint64_t index);
int store_txn_read_batch(store_txn *t, float *mu, float *sigma, int32_t *labels,
                         const uint64_t *idx, const uint8_t *flip, size_t B);
// Copies a view's tensors into aligned buffers (numel floats each; either may
// be NULL); flip picks the flipped pair.
int store_view_copy(float *mu, float *sigma, const store_view *v, bool flip);

// In-order iteration from index start in one read txn (a snapshot).
// next: 1 and *out filled (borrowed until next/close), 0 at the end, or <0.
int store_iter_open(store *s, store_iter **out, uint64_t start);
int store_iter_next(store_iter *it, store_view *out);

// ---- full check -------------------------------------------------------------
#define STORE_MAX_CLASSES 1000000   // labels are -1 (none) or 0..classes-1 below this
typedef struct {
    uint64_t records;      // index keys whose record decodes
    uint64_t bad_records;  // index keys whose record does not
    uint64_t stray_keys;   // keys that are neither __meta__ nor an index
    uint64_t bad_labels;   // labels outside -1..num_classes-1
    uint64_t nonfinite;    // records with a NaN or infinity in mu/sigma (or flips)
} store_verify_report;
// Walks every key of the cache. num_classes <= 0: labels only need to lie in
// -1..STORE_MAX_CLASSES-1. Returns 0 when every count but records is zero,
// else the code of the first problem (STORE_EKEY, STORE_ELABEL,
// VEL_ENONFINITE, STORE_EHEADER, STORE_ERECSIZE) with a detail naming the
// key or index, the tensor and the element; the report is filled either way.
int store_verify(store *s, int32_t num_classes, store_verify_report *r);
void store_iter_close(store_iter **it);   // NULL-safe

// Every index in the cache, ascending, from one snapshot (the train stage
// draws its shuffled batches from this list). *out malloc'ed, caller frees
// with free(); NULL when the cache is empty.
int store_list_indices(store *s, uint64_t **out, size_t *n);

// Per-channel latent statistics (docs/FORMULAS.md: over (N,H,W) of a fixed, seeded
// subset): subset = n_subset indices drawn from the cache by a seeded
// shuffle (all records when n_subset >= count). For z = mu + sigma*eps the
// moments are taken in expectation over eps, so no noise is drawn:
//   mean_c = E[mu_c],  std_c = sqrt(Var[mu_c] + E[sigma_c^2]),
// accumulated in double in ascending index order (deterministic). Unflipped
// variants only. mean, std: C floats. Does not write them (store_set_stats).
int store_compute_stats(store *s, float *mean, float *std, size_t n_subset, uint64_t seed);

// THE latent normalisation (HACKING.md: in exactly one place), from the meta's
// stats: zn = (z - mean_c) / std_c and back. z, zn (B,C,H,W); out may equal
// the input. STORE_ENOSTATS when the meta has no stats.
int store_normalise(float *zn, const float *z, const store_meta *m, int64_t B);
int store_denormalise(float *z, const float *zn, const store_meta *m, int64_t B);

#endif
