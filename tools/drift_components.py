"""Where does the fp32 engine's distance to float64 come from? A float64 NumPy emulation of the engine's
fp32 arithmetic, one component at a time swapped for exact float64 (issue 14).

The emulation follows src/lstm_c bit for bit (checked: the same bits as the avx512_vnni / avx2 tables for
family "fma" and the reference table for "muladd": one chain before issue 14, block=16 then, block=16 with
sup=16 and the float elementwise before the precise elementwise, block=16, sup=16, act="precise",
cell="precise" until the fused cell, cell="fused" now; tests/test_drift.py::test_emulation_is_the_engine):
  products   gates = bias (b_ih + b_hh rounded to float), then the x terms, then the h terms, each term
             one fused multiply-add ("fma") or a rounded multiply then a rounded add ("muladd"); `chains`
             interleaved accumulators (term k into k mod chains, pairwise at the end) or, with `block`,
             blocks of that many terms each summed from 0, `sup` blocks summed from 0 per superblock, then
             added to the gate (kernels.h);
  activations  exp / sigmoid / tanh of src/lstm_c/elementwise.h: act="ours" the float ones (quantised
             layers; fp32 layers before the precise elementwise), act="precise" those of fp32 layers now
             (double operations, rounded once to float32);
  cell       cell="f32": c = f * c + i * g and h = o * tanh(c), each operation rounded to float;
             cell="precise" (fp32 layers until the fused cell): c in double from the float activations,
             rounded once, h = o * tanh(c) in double from the unrounded c, rounded once;
             cell="fused" (fp32 layers now, elementwise_cell_f32.h): c and h from the pre-activations in
             double, one division each, each rounded once; its exp in the family's operations (fma64: a
             double fused multiply-add emulated exactly).
Swaps (Emulated keywords; "exact" = computed in float64, rounded to float32 once):
  products="exact"   each gate's whole sum (bias included) in float64, rounded once
  products="torch"   round(W_ih x) + b_ih, round(W_hh h) + b_hh, then their sum (PyTorch's split, each
                     product exactly rounded: better than PyTorch's own sums)
  bias="exact"       b_ih + b_hh not pre-rounded (added in float64 to the first term)
  act="exact"        sigmoid / tanh correctly rounded float32
  cell="exact"       the c and h updates in float64, rounded once
local_errors() / torch_local_errors(): the teacher-forced one-step errors (docs/accuracy.md's table).

Usage: python tools/drift_components.py STATE_DICT.pt [--steps 1000] [--seeds 6]
prints a table: per configuration the mean over seeds of the max abs error and of the mean abs error of the
last layer's h over all steps, against the float64 reference (tests/reference.py).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from reference import ReferenceLSTM  # noqa: E402

F32 = np.float32


# ---- elementwise.h in float32 operations -------------------------------------------------------------
def _clamp_abs_bits(x, max_bits, keep_sign):
    b = np.asarray(x, F32).view(np.uint32)
    a = np.minimum(b & np.uint32(0x7FFFFFFF), np.uint32(max_bits))
    return (a | (b & np.uint32(0x80000000)) if keep_sign else a).astype(np.uint32).view(F32)


def sigmoid_ours(x):
    """lstm_sigmoid1: P / (P + 2^n Q), e^-r = Q(r) / P(r) by Pade [3/3]"""
    x = _clamp_abs_bits(x, 0x42AD0000, True)
    mlog2e, ln2_hi, ln2_lo = F32(-1.44269504089), F32(0.693145751953125), F32(1.428606765330187e-06)
    magic = F32(12582912.0)
    t = x * mlog2e + magic
    n = t - magic
    r = (x + n * ln2_hi) + n * ln2_lo
    r2 = r * r
    e = F32(1.0) + r2 * F32(0.1)
    o = r * (F32(0.5) + r2 * F32(0.008333333333))
    p, q = e + o, e - o
    q = (q.view(np.uint32) + (t.view(np.uint32) << np.uint32(23))).astype(np.uint32).view(F32)
    return (p / (p + q)).astype(F32)


def tanh_ours(x):
    """lstm_tanh1: ((1 - 2^n) - 2^n m) / ((1 + 2^n) + 2^n m), m = expm1(r), with x's sign bit"""
    x = np.asarray(x, F32)
    a = _clamp_abs_bits(x, 0x41200000, False)
    log2e, ln2_hi, ln2_lo = F32(1.44269504089), F32(0.693145751953125), F32(1.428606765330187e-06)
    magic, one = F32(12582912.0), F32(1.0)
    y = F32(-2.0) * a
    t = y * log2e + magic
    n = t - magic
    r = (y - n * ln2_hi) - n * ln2_lo
    q = np.full_like(r, F32(0.0013882509665563703))
    for c in (0.008366580121219158, 0.04166720062494278, 0.1666654348373413, 0.4999999701976776):
        q = q * r + F32(c)
    m = r + r * (r * q)
    s = ((t.view(np.uint32) << np.uint32(23)) + np.uint32(0x3F800000)).astype(np.uint32).view(F32)
    sm = s * m
    v = ((one - s) - sm) / ((one + s) + sm)
    return (v.view(np.uint32) | (x.view(np.uint32) & np.uint32(0x80000000))).astype(np.uint32).view(F32)


# ---- elementwise.h's precise functions of fp32 layers (double, rounded once), in float64 operations --------
F64 = np.float64
EXP_Q = (9.999999999955728e-01, 5.00000000012053e-01, 1.666666678535095e-01, 4.1666665951442756e-02,
         8.33328375155215e-03, 1.3888978331311251e-03, 1.9907451099083023e-04, 2.4801568926125298e-05)


def exp_parts(x):
    """lstm_exp_parts: (scale = 2^n, r q(r)) with exp(x) = scale + scale r q, expm1(x) = (scale - 1) + scale r q"""
    x = np.asarray(x, F64)
    magic = F64(6755399441055744.0)
    t = x * F64(1.4426950408889634) + magic
    n = t - magic
    r = x - n * F64(0.6931471805599453)
    r2 = r * r
    r4 = r2 * r2
    c0, c1, c2, c3, c4, c5, c6, c7 = (F64(c) for c in EXP_Q)
    q = ((c0 + c1 * r) + r2 * (c2 + c3 * r)) + r4 * ((c4 + c5 * r) + r2 * (c6 + c7 * r))
    scale = ((t.view(np.uint64) << np.uint64(52)) + (np.uint64(1023) << np.uint64(52))).view(F64)
    return scale, r * q


def sigmoid_precise(x):
    """lstm_sigmoid_p: 1 / (1 + exp(-x)) in double, x clamped to [-120, 40], rounded once"""
    d = np.minimum(np.maximum(np.asarray(x, F32).astype(F64), F64(-120.0)), F64(40.0))
    scale, rq = exp_parts(-d)
    return (F64(1.0) / (F64(1.0) + (scale * rq + scale))).astype(F32)


def tanh_abs_precise(a):
    """lstm_tanh_abs_d, in double, not rounded"""
    a = np.minimum(np.asarray(a, F64), F64(10.0))
    scale, rq = exp_parts(F64(-2.0) * a)
    m = (scale - F64(1.0)) + scale * rq
    return (F64(0.0) - m) / (F64(2.0) + m)


def tanh_precise(x):
    x = np.asarray(x, F32)
    t = tanh_abs_precise(np.abs(x.astype(F64))).astype(F32)
    return np.where(np.signbit(x), -t, t).astype(F32)


def tanh_signed_precise(x64):
    t = tanh_abs_precise(np.abs(x64))
    return np.where(x64 < 0, -t, t)


# ---- elementwise_cell_f32.h: the fused precise cell of fp32 layers (one division for c, one for h) -------
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    t = F64(134217729.0) * a  # 2^27 + 1 (Dekker)
    hi = t - (t - a)
    return hi, a - hi


def fma64(a, b, c):
    """fma(a, b, c) of doubles, correctly rounded, in float64 operations: a b exactly as p + e (Dekker), then
    RN(th + RO(tl + e)) with (th, tl) = TwoSum(c, p) and RO rounding to odd (Boldo and Melquiond, "Emulation
    of FMA and correctly rounded sums: proved algorithms using rounding to odd", 2008)."""
    a, b, c = (np.asarray(v, F64) for v in (a, b, c))
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    th, tl = _two_sum(c, p)
    v, err = _two_sum(tl, e)
    even = (v.view(np.int64) & 1) == 0
    v = np.where((err != 0) & even, np.nextafter(v, np.where(err > 0, np.inf, -np.inf)), v)
    return th + v


def _fma_family(family):
    if family == "fma":
        return fma64, lambda a, b, c: fma64(-a, b, c)
    return (lambda a, b, c: a * b + c), (lambda a, b, c: c - a * b)


def cell_fused(zi, zf, zg, zo, c, family):
    """lstm_cell_update_f32 (elementwise_cell_f32.h) from the pre-activations: (c', h) as float32"""
    fma, fnma = _fma_family(family)
    c0, c1, c2, c3, c4, c5, c6, c7 = (F64(v) for v in EXP_Q)
    magic = F64(6755399441055744.0)

    def parts(x):
        t = fma(x, F64(1.4426950408889634), magic)
        n = t - magic
        r = fnma(n, F64(0.6931471805599453), x)
        r2 = r * r
        r4 = r2 * r2
        q = fma(r4, fma(r2, fma(c7, r, c6), fma(c5, r, c4)), fma(r2, fma(c3, r, c2), fma(c1, r, c0)))
        scale = ((t.view(np.uint64) << np.uint64(52)) + (np.uint64(1023) << np.uint64(52))).view(F64)
        return scale, r * q

    def sig_den(x):
        nd = np.minimum(np.maximum(-np.asarray(x, F64), F64(-40.0)), F64(120.0))
        scale, rq = parts(nd)
        return F64(1.0) + fma(scale, rq, scale)

    def tanh_parts(x):
        x = np.asarray(x, F64)
        a = np.minimum(np.abs(x), F64(20.0))
        scale, rq = parts(a * F64(-2.0))
        m = fma(scale, rq, scale - F64(1.0))
        num = F64(0.0) - m
        return np.where(np.signbit(x), -num, num), F64(2.0) + m

    di, df = sig_den(zi.astype(F64)), sig_den(zf.astype(F64))
    ng, dg = tanh_parts(zg.astype(F64))
    dig = di * dg
    cd = fma(np.asarray(c, F32).astype(F64), dig, ng * df) / (df * dig)
    do = sig_den(zo.astype(F64))
    nc, dc = tanh_parts(cd)
    return cd.astype(F32), (nc / (do * dc)).astype(F32)


def sigmoid_exact(x):
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))).astype(F32)


def tanh_exact(x):
    return np.tanh(np.asarray(x, np.float64)).astype(F32)


ACTS = {"ours": (sigmoid_ours, tanh_ours), "precise": (sigmoid_precise, tanh_precise),
        "exact": (sigmoid_exact, tanh_exact)}


# ---- products --------------------------------------------------------------------------------------------
def chain_part(y, w, x, family, chains, block=0, sup=1):
    """y (S, R) float32 += w (R, K) float32 @ x (S, K) float32, the engine's order: `chains` accumulators,
    term k into accumulator k mod chains, accumulator 0 starting at y, the others at 0; combined
    pairwise: chains 2: a0 + a1; chains 4: (a0 + a1) + (a2 + a3)."""
    S, K = x.shape
    R = w.shape[0]
    if block:  # blocks of `block` terms from k0, each summed from 0 (chains as below); `sup` blocks summed
        y = np.array(y, F32)  # from 0 per superblock, then y = y + superblock sum (sup=1: y + each block)
        span = block * sup
        for s0 in range(0, K, span):
            acc = np.zeros_like(y)
            for b0 in range(s0, min(K, s0 + span), block):
                acc = acc + chain_part(np.zeros_like(y), w[:, b0:b0 + block], x[:, b0:b0 + block], family, chains)
            y = y + acc
        return y
    acc = np.zeros((chains, S, R), F32)
    acc[0] = y
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    for k0 in range(0, K, chains):
        m = min(chains, K - k0)
        # products of float32s are exact in float64
        prod = x64[:, k0:k0 + m].T[:, :, None] * w64[:, k0:k0 + m].T[:, None, :]  # (m, S, R)
        if family == "fma":
            acc[:m] = (acc[:m].astype(np.float64) + prod).astype(F32)
        else:
            acc[:m] = acc[:m] + prod.astype(F32)
    if chains == 1:
        return acc[0]
    if chains == 2:
        return acc[0] + acc[1]
    if chains == 4:
        return (acc[0] + acc[1]) + (acc[2] + acc[3])
    while len(acc) > 1:  # pairwise tree: a0 + a1, a2 + a3, ... then again
        acc = acc[0::2] + acc[1::2]
    return acc[0]


class Emulated:
    """One configuration of the emulated engine."""

    def __init__(self, sd, family="fma", chains=1, products="chain", bias="f32", act="ours", cell="f32", block=0,
                 sup=1):
        self.ref = ReferenceLSTM(sd)
        self.family, self.chains, self.products, self.bias, self.act, self.cell = family, chains, products, bias, act, cell
        self.block, self.sup = block, sup

    def run(self, xs):
        """xs (S, T, I) float32 -> last layer's h (S, T, H) float32"""
        seq = np.asarray(xs, F32)
        S, T, _ = seq.shape
        sig, tanh = ACTS[self.act]
        for (cell,) in self.ref.layers:
            H = cell.hidden
            w_ih, w_hh = cell.w_ih.astype(F32), cell.w_hh.astype(F32)
            b_ih, b_hh = cell.b_ih.astype(F32), cell.b_hh.astype(F32)
            b_sum = (b_ih + b_hh).astype(F32)
            h = np.zeros((S, H), F32)
            c = np.zeros((S, H), F32)
            out = np.zeros((S, T, H), F32)
            for t in range(T):
                x = seq[:, t]
                if self.products == "exact":
                    b = b_ih.astype(np.float64) + b_hh.astype(np.float64)
                    z = (b + x.astype(np.float64) @ w_ih.T.astype(np.float64)
                         + h.astype(np.float64) @ w_hh.T.astype(np.float64)).astype(F32)
                elif self.products == "torch":
                    px = (x.astype(np.float64) @ w_ih.T.astype(np.float64)).astype(F32) + b_ih
                    ph = (h.astype(np.float64) @ w_hh.T.astype(np.float64)).astype(F32) + b_hh
                    z = px + ph
                else:
                    if self.bias == "exact":  # first x term added to the float64 sum of both biases
                        y0 = (b_ih.astype(np.float64) + b_hh.astype(np.float64)
                              + x[:, :1].astype(np.float64) * w_ih[:, 0].astype(np.float64)).astype(F32)
                        z = chain_part(y0, w_ih[:, 1:], x[:, 1:], self.family, self.chains, self.block, self.sup)
                    else:
                        z = chain_part(np.broadcast_to(b_sum, (S, 4 * H)), w_ih, x, self.family, self.chains, self.block, self.sup)
                    z = chain_part(z, w_hh, h, self.family, self.chains, self.block, self.sup)
                zi, zf, zg, zo = np.split(z, 4, axis=1)
                if self.cell == "fused":  # elementwise_cell_f32.h (now): from the pre-activations
                    c, h = cell_fused(zi, zf, zg, zo, c, self.family)
                    out[:, t] = h
                    continue
                i, f, g, o = sig(zi), sig(zf), tanh(zg), sig(zo)
                if self.cell == "precise":  # the five-division precise cell (2026-11-30 until the fused one)
                    c64 = f.astype(F64) * c.astype(F64) + i.astype(F64) * g.astype(F64)
                    c = c64.astype(F32)
                    h = (o.astype(F64) * tanh_signed_precise(c64)).astype(F32)
                elif self.cell == "exact":
                    c64 = f.astype(np.float64) * c + i.astype(np.float64) * g
                    c = c64.astype(F32)
                    h = (o.astype(np.float64) * np.tanh(c64) if self.act != "ours"
                         else o.astype(np.float64) * tanh(c).astype(np.float64)).astype(F32)
                else:
                    c = f * c + i * g
                    h = o * tanh(c)
                out[:, t] = h
            seq = out
        return seq


CONFIGS = {
    "ours fma, 1 chain (before)": dict(family="fma", chains=1),
    "ours mul+add, 1 chain (before)": dict(family="muladd", chains=1),
    "ours fma, blocks of 16": dict(family="fma", block=16),
    "ours mul+add, blocks of 16": dict(family="muladd", block=16),
    "ours fma, blocks of 16 in superblocks of 16": dict(family="fma", block=16, sup=16),
    "ours mul+add, blocks of 16 in superblocks of 16": dict(family="muladd", block=16, sup=16),
    "ours fma, superblocks, precise elementwise": dict(family="fma", block=16, sup=16, act="precise",
                                                       cell="precise"),
    "ours mul+add, superblocks, precise elementwise": dict(family="muladd", block=16, sup=16,
                                                          act="precise", cell="precise"),
    "ours fma, superblocks, fused precise cell (now)": dict(family="fma", block=16, sup=16, act="precise",
                                                            cell="fused"),
    "ours mul+add, superblocks, fused precise cell (now)": dict(family="muladd", block=16, sup=16,
                                                               act="precise", cell="fused"),
    "(a) products exact": dict(products="exact"),
    "(a) products as torch (2 parts)": dict(products="torch"),
    "(a) fma, 2 chains": dict(family="fma", chains=2),
    "(a) fma, 4 chains": dict(family="fma", chains=4),
    "(a) mul+add, 4 chains": dict(family="muladd", chains=4),
    "(b) bias b_ih + b_hh exact": dict(bias="exact"),
    "(c) activations exact": dict(act="exact"),
    "(d) cell update exact": dict(cell="exact"),
    "(a)+(c)+(d) all exact": dict(products="exact", act="exact", cell="exact"),
}


def load_state_dict(path):
    import torch

    sd = torch.load(path, map_location="cpu")
    if "model_state" in sd:
        sd = sd["model_state"]
    return {k[len("lstm."):]: v for k, v in sd.items() if k.startswith("lstm.")} if any(
        k.startswith("lstm.") for k in sd) else sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("state_dict")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--only", nargs="*", help="configuration names (substrings) to run")
    ap.add_argument("--torch", action="store_true", help="also PyTorch fp32 and the lstm_embed ISAs")
    args = ap.parse_args()
    sd = load_state_dict(args.state_dict)
    ref = ReferenceLSTM(sd)
    inp = ref.layers[0][0].w_ih.shape[1]
    xs = np.stack([np.random.default_rng(s).standard_normal((args.steps, inp)).astype(F32)
                   for s in range(args.seeds)])
    want = np.stack([ref(x) for x in xs])

    def row(name, got):
        err = np.abs(np.asarray(got, np.float64) - want)
        mx = err.reshape(len(xs), -1).max(axis=1)
        print(f"| {name:<34} | {mx.mean():.3g} | {np.median(mx):.3g} | {err.mean():.3g} |", flush=True)

    print(f"| configuration ({args.seeds} seeds x {args.steps} steps) | max err, mean | max err, median "
          "| mean abs err |\n|---|---|---|---|")
    if args.torch:
        import torch

        import lstm_embed

        lstm = torch.nn.LSTM(inp, ref.layers[0][0].hidden, len(ref.layers), batch_first=True)
        lstm.load_state_dict(sd)
        with torch.no_grad():
            row("PyTorch fp32", lstm(torch.from_numpy(xs))[0].numpy())
        data = lstm_embed.convert_torch(lstm)
        for isa in lstm_embed.supported_isas():
            if isa == "blas":
                continue
            model = lstm_embed.Model.from_bytes(data, isa=isa)
            row(f"lstm_embed {isa}", np.stack([model.stream().run(x) for x in xs]))
    for name, cfg in CONFIGS.items():
        if args.only and not any(o in name for o in args.only):
            continue
        row(name, Emulated(sd, **cfg).run(xs))


if __name__ == "__main__":
    main()


def local_errors(sd, xs, cfg):
    """Teacher-forced error of one step: every layer and step from the float64 reference's state (rounded to
    float32), one emulated step, its h and c against float64 from the same float32 values. Low variance
    (no chaotic amplification): the error each component injects per step. Returns (mean |h err|, mean |c
    err|, mean |gate pre-activation err|)."""
    ref = ReferenceLSTM(sd)
    emu = Emulated(sd, **cfg)
    sig, tanh = ACTS[emu.act]
    seq = np.concatenate(list(np.asarray(xs, np.float64)))  # (S*T, I) as one batch of independent steps
    errs = []
    cur = [np.asarray(x, np.float64) for x in xs]
    for (cell,) in ref.layers:
        H = cell.hidden
        hs, cs, prev_h, prev_c = [], [], [], []
        for x in cur:  # the reference's trajectory of this layer
            h, c = np.zeros(H), np.zeros(H)
            for t in range(len(x)):
                prev_h.append(h), prev_c.append(c)
                h, c = cell.step(x[t], h, c)
                hs.append(h), cs.append(c)
        xin = np.concatenate(cur).astype(F32)
        h0, c0 = np.array(prev_h).astype(F32), np.array(prev_c).astype(F32)
        # exact step from the float32 values
        z64 = xin.astype(np.float64) @ cell.w_ih.astype(F32).T.astype(np.float64) + h0 @ cell.w_hh.astype(F32).T.astype(
            np.float64) + (cell.b_ih.astype(F32).astype(np.float64) + cell.b_hh.astype(F32).astype(np.float64))
        zi, zf, zg, zo = np.split(z64, 4, axis=1)
        s = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731
        c64 = s(zf) * c0 + s(zi) * np.tanh(zg)
        h64 = s(zo) * np.tanh(c64)
        # emulated step
        w_ih, w_hh = cell.w_ih.astype(F32), cell.w_hh.astype(F32)
        b_ih, b_hh = cell.b_ih.astype(F32), cell.b_hh.astype(F32)
        n = len(xin)
        if emu.products == "exact":
            z = z64.astype(F32)
        elif emu.products == "torch":
            z = ((xin.astype(np.float64) @ w_ih.T.astype(np.float64)).astype(F32) + b_ih) + (
                (h0.astype(np.float64) @ w_hh.T.astype(np.float64)).astype(F32) + b_hh)
        else:
            if emu.bias == "exact":
                y0 = (b_ih.astype(np.float64) + b_hh.astype(np.float64)
                      + xin[:, :1].astype(np.float64) * w_ih[:, 0].astype(np.float64)).astype(F32)
                z = chain_part(y0, w_ih[:, 1:], xin[:, 1:], emu.family, emu.chains, emu.block, emu.sup)
            else:
                z = chain_part(np.broadcast_to((b_ih + b_hh).astype(F32), (n, 4 * H)), w_ih, xin, emu.family, emu.chains, emu.block, emu.sup)
            z = chain_part(z, w_hh, h0, emu.family, emu.chains, emu.block, emu.sup)
        zi, zf, zg, zo = np.split(z, 4, axis=1)
        i, f, g, o = sig(zi), sig(zf), tanh(zg), sig(zo)
        if emu.cell == "fused":
            cc, hh = cell_fused(zi, zf, zg, zo, c0, emu.family)
        elif emu.cell == "precise":
            c64p = f.astype(F64) * c0.astype(F64) + i.astype(F64) * g.astype(F64)
            cc = c64p.astype(F32)
            hh = (o.astype(F64) * tanh_signed_precise(c64p)).astype(F32)
        elif emu.cell == "exact":
            cc = f.astype(np.float64) * c0 + i.astype(np.float64) * g
            hh = o.astype(np.float64) * np.tanh(cc)
        else:
            cc = f * c0 + i * g
            hh = o * tanh(cc)
        errs.append((np.abs(hh - h64).mean(), np.abs(cc - c64).mean(), np.abs(z - z64).mean(),
                     (hh - h64).mean(), (cc - c64).mean(), (z - z64).mean()))
        cur = [np.array(hs[k * len(xs[0]):(k + 1) * len(xs[0])]) for k in range(len(xs))]
    return tuple(float(np.mean([e[j] for e in errs])) for j in range(6))


def torch_local_errors(sd, xs):
    """local_errors for PyTorch fp32: each layer as a 1-layer nn.LSTM run one step from the reference's
    states (the batch holds every step of every sequence)."""
    import torch

    ref = ReferenceLSTM(sd)
    errs = []
    cur = [np.asarray(x, np.float64) for x in xs]
    for li, (cell,) in enumerate(ref.layers):
        H = cell.hidden
        hs, prev_h, prev_c, want_h, want_c = [], [], [], [], []
        for x in cur:
            h, c = np.zeros(H), np.zeros(H)
            for t in range(len(x)):
                prev_h.append(h), prev_c.append(c)
                h, c = cell.step(x[t], h, c)
                hs.append(h)
        xin = np.concatenate(cur).astype(F32)
        h0, c0 = np.array(prev_h).astype(F32), np.array(prev_c).astype(F32)
        z64 = xin.astype(np.float64) @ cell.w_ih.astype(F32).T.astype(np.float64) + h0 @ cell.w_hh.astype(F32).T.astype(
            np.float64) + (cell.b_ih.astype(F32).astype(np.float64) + cell.b_hh.astype(F32).astype(np.float64))
        zi, zf, zg, zo = np.split(z64, 4, axis=1)
        s = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731
        c64 = s(zf) * c0 + s(zi) * np.tanh(zg)
        h64 = s(zo) * np.tanh(c64)
        lstm = torch.nn.LSTM(xin.shape[1], H, 1)
        lstm.load_state_dict({k.replace(f"_l{li}", "_l0"): v for k, v in sd.items() if k.endswith(f"_l{li}")})
        with torch.no_grad():  # batch 1, one step at a time: the matrix-vector products of streaming
            got = [lstm(torch.from_numpy(xin[j:j + 1])[None], (torch.from_numpy(h0[j:j + 1])[None],
                                                               torch.from_numpy(c0[j:j + 1])[None]))[1]
                   for j in range(len(xin))]
        hh = np.concatenate([g[0][0].numpy() for g in got])
        cc = np.concatenate([g[1][0].numpy() for g in got])
        errs.append((np.abs(hh - h64).mean(), np.abs(cc - c64).mean(), (hh - h64).mean(), (cc - c64).mean()))
        cur = [np.array(hs[k * len(xs[0]):(k + 1) * len(xs[0])]) for k in range(len(xs))]
    return tuple(float(np.mean([e[j] for e in errs])) for j in range(4))
