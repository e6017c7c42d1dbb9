// toy_mlp.c: see toy_mlp.h.
#include "models/toy_mlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "nn/activation.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/linear.h"
#include "nn/safetensors.h"

void toy_mlp_declare(toy_mlp *m, param_table *pt, const char *prefix, int in, int out,
                     int depth, int width, int max_batch) {
    CHECK(depth >= 0 && depth + 1 <= TOY_MAX_LAYERS && width > 0 && in > 0 && out > 0);
    memset(m, 0, sizeof *m);
    m->in = in, m->out = out, m->depth = depth, m->width = width, m->max_batch = max_batch;
    for (int l = 0; l <= depth; l++) {
        int fi = l == 0 ? in : width, fo = l == depth ? out : width;
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, l);
        m->pidx[l] = pt->count;
        param_add(pt, name, 2, (int64_t[]){fo, fi});
        snprintf(name, sizeof name, "%s.layers.%d.bias", prefix, l);
        param_add(pt, name, 1, (int64_t[]){fo});
    }
}

void toy_mlp_bind(toy_mlp *m, const param_table *pt) {
    for (int l = 0; l <= m->depth; l++) {
        m->W[l] = param_data(pt, m->pidx[l]);
        m->b[l] = param_data(pt, m->pidx[l] + 1);
        m->dW[l] = param_grad(pt, m->pidx[l]);
        m->db[l] = param_grad(pt, m->pidx[l] + 1);
    }
}

void toy_mlp_carve(toy_mlp *m, arena *a) {
    size_t B = (size_t)m->max_batch, wmax = m->width > m->in ? m->width : m->in;
    if (m->out > (int)wmax) wmax = m->out;
    m->x0 = arena_floats(a, B * m->in);
    for (int l = 0; l < m->depth; l++) {
        m->pre[l] = arena_floats(a, B * m->width);
        m->post[l] = arena_floats(a, B * m->width);
    }
    m->g0 = arena_floats(a, B * wmax);
    m->g1 = arena_floats(a, B * wmax);
}

void toy_mlp_init(toy_mlp *m, mt19937 *rng) {
    for (int l = 0; l <= m->depth; l++) {
        int fi = l == 0 ? m->in : m->width, fo = l == m->depth ? m->out : m->width;
        double bound = 1.0 / sqrt((double)fi);
        for (int64_t i = 0; i < (int64_t)fo * fi; i++)
            m->W[l][i] = (float)((2.0 * mt_random_sample(rng) - 1.0) * bound);
        for (int i = 0; i < fo; i++) m->b[l][i] = (float)((2.0 * mt_random_sample(rng) - 1.0) * bound);
    }
}

void toy_copy(void *dst, const void *src, size_t bytes) {
    int e = device_copy(dst, src, bytes);
    if (e) nn_fail(e, "toy_mlp copy", vel_errmsg(e));
}
void toy_zero(float *p, size_t n) {
    int e = device_zero(p, sizeof(float) * n);
    if (e) nn_fail(e, "toy_mlp zero", vel_errmsg(e));
}

void toy_mlp_forward(toy_mlp *m, float *out, const float *in, int B) {
    // out (B,out), in (B,in): all where the model lives (host or device)
    CHECK(B >= 0 && B <= m->max_batch);
    toy_copy(m->x0, in, sizeof(float) * (size_t)B * m->in);
    const float *cur = m->x0;
    int C = m->in;
    for (int l = 0; l < m->depth; l++) {
        linear_forward(m->pre[l], cur, m->W[l], m->b[l], B, C, m->width);
        int64_t n = (int64_t)B * m->width;
        relu_forward(m->post[l], m->pre[l], n);   // vectorised, branch-free
        cur = m->post[l];
        C = m->width;
    }
    linear_forward(out, cur, m->W[m->depth], m->b[m->depth], B, C, m->out);
    m->last_batch = B;
}

void toy_mlp_backward(toy_mlp *m, float *din, const float *dout, int B) {
    // din (B,in) or NULL, dout (B,out); activations from the latest forward.
    // g0 holds d post[l] (the gradient of hidden layer l's output), g1 d pre[l].
    CHECK(B == m->last_batch);
    const int L = m->depth;
    if (L == 0) {
        linear_backward(din, m->dW[0], m->db[0], dout, m->x0, m->W[0], B, m->in, m->out);
        return;
    }
    const int64_t n = (int64_t)B * m->width;
    // g0 and g1 are written (_set: no zeroing passes); din accumulates (nn/linear.h)
    linear_backward_set(m->g0, m->dW[L], m->db[L], dout, m->post[L - 1], m->W[L], B, m->width, m->out);
    for (int l = L - 1; l >= 0; l--) {
        relu_backward_set(m->g1, m->g0, m->pre[l], n);   // gradient 0 where pre <= 0
        if (l > 0)
            linear_backward_set(m->g0, m->dW[l], m->db[l], m->g1, m->post[l - 1], m->W[l], B, m->width, m->width);
        else
            linear_backward(din, m->dW[0], m->db[0], m->g1, m->x0, m->W[0], B, m->in, m->width);
    }
}
