#!/usr/bin/python3
"""gen_loss.py OUTDIR: numpy references for nn/loss.h.

Float32 inputs, float64 loss values, and gradients by central finite
differences of the float64 loss (h = 1e-6). logvar includes values outside
the clamp [-30, 20] (gradient must be zero there) and none within 1e-3 of the
clamp edges, so no difference straddles a kink; likewise |pred - target| and
|mu| - tau stay away from 0.
"""
import sys
import numpy as np

LVMIN, LVMAX = -30.0, 20.0
COS_EPS = 1e-8
TAU = 1.0
DELTA = 1e-6
# (outer, C, inner) views: NCHW (B=2, C=4, 5x3) and tokens (N*T = 6, C = 7)
COS_CASES = [(2, 4, 15), (6, 7, 1)]
# mag reg (b) views (B, C, inner): per channel NCHW, and global over (N, D);
# per-channel scales put some channel RMS below tau (no penalty) and some above.
MAGB_CASES = [(3, 4, 6), (8, 1, 2)]
MAGB_SCALES = [[0.5, 1.5, 2.5, 0.8], [1.5]]


def fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def fd_sep(term, x, scale, h=1e-6):
    """Central differences of a separable loss scale * sum(term(x_i)), one
    element at a time (vectorised): differencing the total instead would
    lose digits to the large clamped terms (exp(20) ~ 5e8)."""
    return (term(x + h) - term(x - h)) / (2 * h) * scale


def clamp(lv):
    return np.clip(lv, LVMIN, LVMAX)


def cos_loss(x, y, outer, C, inner):
    x = x.reshape(outer, C, inner)
    y = y.reshape(outer, C, inner)
    nx = np.maximum(np.sqrt((x * x).sum(1)), COS_EPS)
    ny = np.maximum(np.sqrt((y * y).sum(1)), COS_EPS)
    return np.mean(1.0 - (x * y).sum(1) / (nx * ny))


def kl(mu, lv):
    l = clamp(lv)
    return 0.5 * np.sum(mu ** 2 + np.exp(l) - 1.0 - l) / mu.shape[0]


VE = {
    0: lambda lv: np.mean(1.0 / (np.exp(clamp(lv)) + DELTA)),
    1: lambda lv: np.mean(-np.exp(clamp(lv))),
    2: lambda lv: np.mean(-0.5 * clamp(lv)),
}


def mag_a(mu):
    return np.mean(np.exp(np.maximum(np.abs(mu) - TAU, 0.0)) - 1.0)


def mag_b(mu, B, C, inner):
    m = np.sqrt((mu.reshape(B, C, inner) ** 2).mean(axis=(0, 2)))
    return np.mean(np.exp(np.maximum(m - TAU, 0.0)) - 1.0)


def f32(x):
    return x.astype(np.float32)


def away(x, points, gap):
    """Moves values within gap of any point in points to point + 2*gap."""
    x = x.copy()
    for p in points:
        x = np.where(np.abs(x - p) < gap, p + 2 * gap, x)
    return x


def save(out, name, v):
    np.save(f"{out}/{name}.npy", v)


def main(out):
    rng = np.random.default_rng(2468)
    n = 301
    pred = f32(rng.standard_normal(n))
    target = rng.standard_normal(n)
    target = f32(np.where(np.abs(pred - target) < 1e-3, target + 0.01, target))
    save(out, "pred", pred)
    save(out, "target", target)
    save(out, "g0a", f32(rng.standard_normal(n)))
    save(out, "g0b", f32(rng.standard_normal(n)))
    p64, t64 = pred.astype(np.float64), target.astype(np.float64)
    for name, f in (("mse", lambda a, b: np.mean((a - b) ** 2)),
                    ("l1", lambda a, b: np.mean(np.abs(a - b)))):
        save(out, f"{name}_loss", np.array([f(p64, t64)]))
        save(out, f"{name}_dpred", fd(lambda a: f(a, t64), p64.copy()))
        save(out, f"{name}_dtarget", fd(lambda b: f(p64, b), t64.copy()))

    save(out, "cos_cases", np.array(COS_CASES, dtype=np.int64))
    for ci, (o, C, i) in enumerate(COS_CASES):
        x = rng.standard_normal(o * C * i)
        y = rng.standard_normal(o * C * i) + 0.5 * x   # correlated, cos ~ 0.4
        x, y = f32(x), f32(y)
        if ci == 1:
            x[:C] = 0.0    # one all-zero position: the eps clamp path (cos = 0)
        save(out, f"cosc{ci}_x", x)
        save(out, f"cosc{ci}_y", y)
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        save(out, f"cosc{ci}_loss", np.array([cos_loss(x64, y64, o, C, i)]))
        gx = fd(lambda a: cos_loss(a, y64, o, C, i), x64.copy())
        if ci == 1:
            # At x = 0 exactly the clamped norm makes the loss 1 - <x,y>/(eps|y|),
            # which is differentiable; central differences with h = 1e-6 would
            # step out of the clamp region (|x| = 1e-6 > eps), so use the
            # one-sided analytic value -y/(eps*|y|)/P there.
            yv = y64[:C]
            gx[:C] = -yv / (COS_EPS * np.linalg.norm(yv)) / (o * i)
        save(out, f"cosc{ci}_dx", gx)
        save(out, f"cosc{ci}_dy", fd(lambda b: cos_loss(x64, b, o, C, i), y64.copy()))

    # latent side: B = 3 images of 2 x 4 x 5 = 40 elements
    B, per = 3, 40
    mu = f32(away(rng.standard_normal(B * per) * 1.5, [TAU, -TAU, 0.0], 1e-3))
    lv = rng.uniform(-6, 3, B * per)
    lv[:4] = [-35.0, 25.0, -31.0, 21.5]        # outside the clamp: zero gradient
    lv = f32(away(lv, [LVMIN, LVMAX], 1e-3))
    eps = f32(rng.standard_normal(B * per))
    save(out, "mu", mu)
    save(out, "logvar", lv)
    save(out, "eps", eps)
    m64, l64, e64 = mu.astype(np.float64), lv.astype(np.float64), eps.astype(np.float64)
    save(out, "kl_loss", np.array([kl(m64.reshape(B, per), l64.reshape(B, per))]))
    save(out, "kl_dmu", fd_sep(lambda a: 0.5 * a * a, m64, 1.0 / B))
    save(out, "kl_dlogvar", fd_sep(lambda b: 0.5 * (np.exp(clamp(b)) - clamp(b)), l64, 1.0 / B))
    ve_terms = {0: lambda b: 1.0 / (np.exp(clamp(b)) + DELTA),
                1: lambda b: -np.exp(clamp(b)),
                2: lambda b: -0.5 * clamp(b)}
    for k, f in VE.items():
        save(out, f"ve{k}_loss", np.array([f(l64)]))
        save(out, f"ve{k}_dlogvar", fd_sep(ve_terms[k], l64, 1.0 / l64.size))
    save(out, "maga_loss", np.array([mag_a(m64)]))
    save(out, "maga_dmu",
         fd_sep(lambda a: np.exp(np.maximum(np.abs(a) - TAU, 0.0)), m64, 1.0 / m64.size))
    save(out, "magb_cases", np.array(MAGB_CASES, dtype=np.int64))
    for ci, (bb, cc, ii) in enumerate(MAGB_CASES):
        scale = np.array(MAGB_SCALES[ci])[None, :, None]
        x = f32((rng.standard_normal((bb, cc, ii)) * scale).reshape(-1))
        x64 = x.astype(np.float64)
        save(out, f"magbc{ci}_mu", x)
        save(out, f"magbc{ci}_loss", np.array([mag_b(x64, bb, cc, ii)]))
        save(out, f"magbc{ci}_dmu", fd(lambda a: mag_b(a, bb, cc, ii), x64.copy()))
    R = f32(rng.standard_normal(B * per))
    save(out, "rep_R", R)
    rep = lambda a, b: a + np.exp(0.5 * clamp(b)) * e64
    save(out, "rep_z", rep(m64, l64))
    R64 = R.astype(np.float64)
    save(out, "rep_dmu", fd_sep(lambda a: a, m64, 1.0) * R64)
    save(out, "rep_dlogvar", fd_sep(lambda b: np.exp(0.5 * clamp(b)) * e64, l64, 1.0) * R64)

if __name__ == "__main__":
    main(sys.argv[1])
