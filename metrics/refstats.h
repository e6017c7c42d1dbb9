// refstats.h: reference statistics of real images for Frechet distances,
// computed once and cached (`eval --model images --ref-stats`), in a
// safetensors file:
//   mu (D), sigma (D, D)           pooled features: mean, unbiased covariance
//   mu_s (Ds), sigma_s (Ds, Ds)    spatial features (sFID), optional
//   feats (n, D)                   reference features for precision/recall,
//                                  optional (F32)
// Means and covariances are double: each is stored as two F32 tensors,
// NAME (the value rounded to float) and NAME.lo (the rounding remainder), so
// value = NAME + NAME.lo to ~48 bits (the safetensors module has no F64).
// __metadata__: format "vel-refstats-1", feature_net (the network's name),
// feature_net_hash (16 hex digits, featnet_hash of its weights), count (the
// images). Loading names the network the caller evaluates with; statistics
// of any other network or other weights are refused (METRICS_ENET), since a
// distance between features of two networks means nothing.
// Errors: the metrics range -700..-799 (messages in core/error.c), plus the
// checkpoint codes of nn/safetensors.h for the file itself; the detail
// (which file, tensor or key) is this thread's vel_error_detail().
#ifndef METRICS_REFSTATS_H
#define METRICS_REFSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"

enum {
    METRICS_ENET = -701,    // statistics computed with another feature network
    METRICS_ESTATS = -702,  // statistics file inconsistent (shapes, metadata)
};

#define REFSTATS_FORMAT "vel-refstats-1"
#define REFSTATS_NET_MAX 64

typedef struct {
    char net[REFSTATS_NET_MAX];   // feature network name, e.g. "inception-v3-fid"
    char net_hash[17];            // 16 lowercase hex digits
    int64_t count;                // images the statistics describe
    int D;                        // pooled feature dims
    double *mu, *sigma;           // (D), (D, D)
    int Ds;                       // spatial feature dims, 0 if none
    double *mu_s, *sigma_s;       // (Ds), (Ds, Ds), or NULL
    int64_t nfeats;               // reference features kept, 0 if none
    float *feats;                 // (nfeats, D) or NULL
} refstats;

// FNV-1a 64 over every parameter's name, shape and float values in table
// order: two weight sets with any differing value differ (with overwhelming
// probability). hex gets 16 lowercase hex digits and a NUL.
uint64_t featnet_hash(const param_table *pt);
void featnet_hash_hex(char hex[17], uint64_t h);

// Writes r (its pointers borrowed) atomically. Returns 0, VEL_EINVAL,
// VEL_ENOMEM or a checkpoint code.
int refstats_save(const char *path, const refstats *r);
// Reads and checks a file; net and net_hash are what the caller evaluates
// with. On success *out is owned by the caller (refstats_destroy).
int refstats_load(refstats **out, const char *path, const char *net, const char *net_hash);
void refstats_destroy(refstats **r);

#endif
