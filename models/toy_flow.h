// toy_flow.h: the 2D toy's flow model (docs/FORMULAS.md section 2): an MLP
// (z_t 2, time features of t) -> v 2, trained by flow matching. t enters raw
// (one input) or as fixed Fourier features.
// Checkpoints: safetensors, model "toy-flow" (models/toy_ckpt.h), plus
// "time_embed" (raw | fourier) and "time_freqs" (K) in __metadata__; a
// checkpoint without them is a raw-time model (written before the option
// existed). toy_flow_save writes them.
#ifndef MODELS_TOY_FLOW_H
#define MODELS_TOY_FLOW_H

#include <stdint.h>

#include "models/toy_mlp.h"
#include "nn/safetensors.h"

// Time input. TOY_TIME_RAW: t itself (one input, the original model).
// TOY_TIME_FOURIER: 2K fixed features [sin(w_k t), cos(w_k t)], k = 0..K-1,
// w_k = 1000 * 10000^(-k/K) (the DDPM / transformer sinusoidal embedding of
// 1000 t: periods from 2pi/1000 up to ~2pi/0.18 for K = 16), no raw t.
// The MLP's input is [z_t (2), time features] either way.
typedef enum { TOY_TIME_RAW = 0, TOY_TIME_FOURIER = 1 } toy_time_embed;
#define TOY_FOURIER_DEFAULT 16
#define TOY_FOURIER_MAX 256
const char *toy_time_embed_name(toy_time_embed te);   // "raw", "fourier"
int toy_time_embed_parse(const char *name, toy_time_embed *out);   // 0 or TOY_ECONFIG
// Writes the time features of t into feat (toy_time_features_dim floats).
int toy_time_features_dim(toy_time_embed te, int nfreq);
void toy_time_features(float *feat, float t, toy_time_embed te, int nfreq);

typedef struct {
    int depth, width, max_batch;
    toy_time_embed time_embed;
    int nfreq, in_dim;           // Fourier frequencies K (0 for raw); MLP input 2 + time dim
    device_kind dev;             // where pt and act live (toy_flow_to_device)
    param_table pt;
    toy_mlp net;
    arena act;
    float *inp, *v, *target, *dv;   // in act
    double *vals;                // in act: flow_loss's 2 values
    float *hinp, *htarget;       // GPU model: host staging of inp, target (else NULL)
    int err;                     // device error of the latest loss call (0: none)
} toy_flow;

// nfreq is used by TOY_TIME_FOURIER only (1..TOY_FOURIER_MAX).
int toy_flow_create(toy_flow **out, int depth, int width, int max_batch, toy_time_embed te,
                    int nfreq);
void toy_flow_destroy(toy_flow **f);
// Moves parameters and activations to the GPU (after device_activate and
// toy_flow_init or a load); only DEVICE_CUDA, once. The loss, velocity and
// optimizer calls then run there: their inputs (z1, x0, t, zt) stay host
// arrays, staged and copied up per call, and v comes back to the host.
// 0 or a device code (nn/device.h; the model is unchanged on failure).
int toy_flow_to_device(toy_flow *f, device_kind kind);
void toy_flow_init(toy_flow *f, uint32_t seed);
// v (B, 2) = model(z_t (B, 2), t (B)); B <= max_batch.
void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B);
// Flow matching on data z1 with noise x0 and times t: z_t = t z1 + (1-t) x0,
// target z1 - x0, loss mean((v - target)^2) (nn/flow_loss.h, no cosine term).
// Zeroes grads, accumulates them. On the GPU the call waits for the forward
// (the value comes back) and queues the backward; a device failure returns
// NAN with f->err set (vel_errmsg(f->err) says what).
double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B);
double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B);

// A host model only (VEL_EINVAL for a GPU one: copy its values into a host
// model of the same architecture first).
int toy_flow_save(const char *path, const toy_flow *f, const st_kv *extra, int nextra);
int toy_flow_load(toy_flow **out, const char *path, int max_batch);

#endif
