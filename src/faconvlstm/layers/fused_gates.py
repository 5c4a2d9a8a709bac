r"""Fused 1×1 gate expansion + peephole LSTM update, with a recomputing backward.

The FA step is memory-bound (see ``docs/performance.md``): the four-gate map
(N pixels × 4F channels) is the largest tensor of a step, and a straightforward autograd
implementation writes it, reads it and stores several copies of it for backward. Here the
expansion $z = m W^\top + b$ and the gate math run block by block over pixels, so each
block of ``z`` lives in cache and is never written to main memory; backward recomputes ``z``
from the r-channel bottleneck ``m`` (r ≪ 4F) instead of storing it. Saved per step: ``m``
(N × r), ``c_{t-1}`` and ``c_t`` (N × F) — about 1/4 of what autograd keeps for the same
equations.

Equations (per pixel; $p_i, p_f, p_o$ per-channel peephole weights):

$$
\begin{aligned}
[z_i, z_f, z_g, z_o] &= m W^\top + b \\
i &= \sigma(z_i + p_i \odot c_{t-1}) \\
f &= \sigma(z_f + p_f \odot c_{t-1}) \\
g &= \tanh(z_g) \\
c_t &= f \odot c_{t-1} + i \odot g \\
o &= \sigma(z_o + p_o \odot c_t) \\
h_t &= o \odot \tanh(c_t)
\end{aligned}
$$

Backward, given $\bar h_t$ and $\bar c_t$ (the gradient reaching $c_t$ from
later steps):

$$
\begin{aligned}
\bar z_o &= \bar h_t \tanh(c_t)\, o(1-o) \\
\bar c &= \bar c_t + \bar h_t\, o\,(1-\tanh^2 c_t) + \bar z_o p_o \\
\bar z_i &= \bar c\, g\, i(1-i) \\
\bar z_f &= \bar c\, c_{t-1} f(1-f) \\
\bar z_g &= \bar c\, i\,(1-g^2) \\
\bar c_{t-1} &= \bar c f + \bar z_i p_i + \bar z_f p_f \\
\bar m &= \bar z W,\quad \bar W = \bar z^\top m,\quad \bar b = \textstyle\sum \bar z
\end{aligned}
$$

:func:`lstm_gates_reference` is the same computation in plain autograd ops: it is used
under ``torch.compile``/``torch.export`` (where the compiler fuses it), for non-default
activations, and by the tests as the oracle.
"""

from __future__ import annotations

import torch

_sigmoid_backward = torch.ops.aten.sigmoid_backward
_tanh_backward = torch.ops.aten.tanh_backward

#: elements of the (block × 4F) gate buffer per block: 2**18 floats = 1 MiB, which stays in
#: L2 together with the block's slices of m, c and h (measured fastest in benchmarks/).
BLOCK_ELEMENTS = 1 << 18


def lstm_gates_reference(
    m: torch.Tensor,
    c_prev: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    peephole: torch.Tensor | None,
    activation=torch.tanh,
    recurrent_activation=torch.sigmoid,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain-autograd version. m (N, r), c_prev (N, F), weight (4F, r), bias (4F,),
    peephole (3, F) or None. Returns (h, c), each (N, F)."""
    z = torch.nn.functional.linear(m, weight, bias)
    zi, zf, zg, zo = z.chunk(4, dim=1)
    if peephole is not None:
        zi = zi + peephole[0] * c_prev
        zf = zf + peephole[1] * c_prev
    i = recurrent_activation(zi)
    f = recurrent_activation(zf)
    c = f * c_prev + i * activation(zg)
    if peephole is not None:
        zo = zo + peephole[2] * c
    o = recurrent_activation(zo)
    h = o * activation(c)
    return h, c


def _block_size(n: int, filters: int, device: torch.device) -> int:
    if device.type != "cpu":  # GPUs: one block (launch overhead dominates; memory saving kept)
        return n
    return max(64, min(n, BLOCK_ELEMENTS // (4 * filters)))


def _gate_major(weight, bias, filters):
    """Expansion as gate-major (4, r, F) weights and (4, 1, F) bias, candidate rows doubled.

    Gate-major blocks make every gate a contiguous (n, F) slab (strided gate views made
    elementwise ops ~9x slower here). Doubling the candidate rows lets σ(2 z_g) come out of
    the same sigmoid as i and f, with tanh(z_g) = 2σ(2 z_g) − 1: PyTorch's CPU tanh measured
    ~10x slower than sigmoid on these machines (benchmarks/).
    """
    r = weight.shape[1]
    scale = torch.ones(4, 1, 1, dtype=weight.dtype, device=weight.device)
    scale[2] = 2.0
    w = (weight.view(4, filters, r) * scale).transpose(1, 2)  # (4, r, F)
    b = None if bias is None else bias.view(4, 1, filters) * scale
    return w, b


def _expand(m, w, b, out):
    """out (4, n, F) ← m (n, r) @ w (4, r, F) [+ b (4, 1, F)]."""
    mb = m.unsqueeze(0).expand(4, *m.shape)
    if b is None:
        return torch.bmm(mb, w, out=out)
    return torch.baddbmm(b, mb, w, out=out)


def _gates_block(z, c_prev, peephole):
    """In place on the gate-major block z (4, n, F) of the doubled-candidate expansion:
    z ← [i, f, g, z_o] with i, f activated and g = tanh(z_g). Returns the four slabs."""
    if peephole is not None:
        z[:2].addcmul_(c_prev.unsqueeze(0), peephole[:2].unsqueeze(1))
    z[:3].sigmoid_()
    g = z[2]
    torch.add(g, g, out=g).sub_(1.0)
    return z[0], z[1], g, z[3]


def _tanh_via_sigmoid(x, out):
    """out ← tanh(x) = 2σ(2x) − 1 (x + x, not 2·x: scalar multiplies are slow on CPU)."""
    torch.add(x, x, out=out).sigmoid_()
    return torch.add(out, out, out=out).sub_(1.0)


class FusedLSTMGates(torch.autograd.Function):
    """Autograd function for the fused expansion + gates; see the module docstring."""

    @staticmethod
    def forward(ctx, m, c_prev, weight, bias, peephole):
        n_pix, F_ = c_prev.shape
        block = _block_size(n_pix, F_, c_prev.device)
        h = torch.empty_like(c_prev)
        c = torch.empty_like(c_prev)
        z_buf = torch.empty(4, block, F_, dtype=c_prev.dtype, device=c_prev.device)
        w, b = _gate_major(weight, bias, F_)
        for s in range(0, n_pix, block):
            e = min(n_pix, s + block)
            z = _expand(m[s:e], w, b, z_buf[:, : e - s])
            i, f, g, o = _gates_block(z, c_prev[s:e], peephole)
            cb, hb = c[s:e], h[s:e]
            torch.mul(f, c_prev[s:e], out=cb)
            cb.addcmul_(i, g)
            if peephole is not None:
                o.addcmul_(cb, peephole[2])
            o.sigmoid_()
            _tanh_via_sigmoid(cb, hb).mul_(o)
        ctx.save_for_backward(m, c_prev, c, weight, bias, peephole)
        return h, c

    @staticmethod
    def backward(ctx, dh, dc):
        m, c_prev, c, weight, bias, peephole = ctx.saved_tensors
        n_pix, F_ = c_prev.shape
        r = m.shape[1]
        block = _block_size(n_pix, F_, c_prev.device)
        dh = dh.contiguous()
        dc = dc.contiguous()
        # dm and dW are accumulated transposed, (r, N) and (4, r, F): r is the narrow side,
        # and a GEMM whose output is only r (or F) columns wide ran 3-10x slower than the
        # same product with the long pixel axis as its output columns (benchmarks/).
        m_t = m.t().contiguous()
        dm_t = torch.empty(r, n_pix, dtype=c.dtype, device=c.device)
        dc_prev = torch.empty_like(c_prev)
        dweight_t = torch.zeros(4, r, F_, dtype=c.dtype, device=c.device)
        dbias = torch.zeros(4, F_, dtype=c.dtype, device=c.device) if bias is not None else None
        dpeep = torch.zeros_like(peephole) if peephole is not None else None
        z_buf = torch.empty(4, block, F_, dtype=c.dtype, device=c.device)
        dz_buf = torch.empty_like(z_buf)
        tmp = torch.empty(block, F_, dtype=c.dtype, device=c.device)
        dcb = torch.empty_like(tmp)
        tc = torch.empty_like(tmp)
        w, b = _gate_major(weight, bias, F_)
        w_rows = weight.view(4, F_, r)
        for s in range(0, n_pix, block):
            e = min(n_pix, s + block)
            n = e - s
            dz, t1, dct, tcb = dz_buf[:, :n], tmp[:n], dcb[:n], tc[:n]
            c0, c1, dhb, mb = c_prev[s:e], c[s:e], dh[s:e], m[s:e]
            z = _expand(mb, w, b, z_buf[:, :n])
            i, f, g, o = _gates_block(z, c0, peephole)
            if peephole is not None:
                o.addcmul_(c1, peephole[2])
            o.sigmoid_()
            _tanh_via_sigmoid(c1, tcb)
            dzi, dzf, dzg, dzo = dz[0], dz[1], dz[2], dz[3]
            # output gate
            torch.mul(dhb, tcb, out=t1)
            _sigmoid_backward.grad_input(t1, o, grad_input=dzo)
            # total gradient reaching c_t
            torch.mul(dhb, o, out=t1)
            _tanh_backward.grad_input(t1, tcb, grad_input=dct)
            dct.add_(dc[s:e])
            if peephole is not None:
                dct.addcmul_(dzo, peephole[2])
            # input, forget, candidate
            torch.mul(dct, g, out=t1)
            _sigmoid_backward.grad_input(t1, i, grad_input=dzi)
            torch.mul(dct, c0, out=t1)
            _sigmoid_backward.grad_input(t1, f, grad_input=dzf)
            torch.mul(dct, i, out=t1)
            _tanh_backward.grad_input(t1, g, grad_input=dzg)
            # carry to c_{t-1}
            dcp = dc_prev[s:e]
            torch.mul(dct, f, out=dcp)
            if peephole is not None:
                dcp.addcmul_(dzi, peephole[0]).addcmul_(dzf, peephole[1])
                dpeep[0].add_(torch.mul(dzi, c0, out=t1).sum(0))
                dpeep[1].add_(torch.mul(dzf, c0, out=t1).sum(0))
                dpeep[2].add_(torch.mul(dzo, c1, out=t1).sum(0))
            # expansion: dmᵀ = Σ_k W_kᵀ dz_kᵀ, dW_kᵀ += mᵀ dz_k, db_k += Σ dz_k
            # (out= rather than addmm_: the same kernel, and torch's FLOP counter sees it)
            dmb = dm_t[:, s:e]
            torch.addmm(dmb, w_rows[0].t(), dz[0].t(), beta=0, out=dmb)
            for k in range(1, 4):
                torch.addmm(dmb, w_rows[k].t(), dz[k].t(), out=dmb)
            for k in range(4):
                torch.addmm(dweight_t[k], m_t[:, s:e], dz[k], out=dweight_t[k])
            if dbias is not None:
                dbias.add_(dz.sum(1))
        dweight = dweight_t.transpose(1, 2).reshape(4 * F_, r)
        dbias = dbias.view(4 * F_) if dbias is not None else None
        return dm_t.t().contiguous(), dc_prev, dweight, dbias, dpeep


def lstm_gates(
    m: torch.Tensor,
    c_prev: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    peephole: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused gates (sigmoid/tanh): m (N, r), c_prev (N, F) → (h, c), each (N, F).

    Runs in ``c_prev``'s dtype (float32 states under autocast) with autocast disabled, so
    mixed precision never degrades the cell state. Falls back to
    :func:`lstm_gates_reference` while compiling or exporting.
    """
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return lstm_gates_reference(m, c_prev, weight, bias, peephole)
    dtype = c_prev.dtype
    m = m.to(dtype).contiguous()
    weight = weight.to(dtype)
    bias = bias.to(dtype) if bias is not None else None
    peephole = peephole.to(dtype) if peephole is not None else None
    with torch.autocast(device_type=m.device.type, enabled=False):
        return FusedLSTMGates.apply(m, c_prev.contiguous(), weight, bias, peephole)
