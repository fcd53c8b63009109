"""STARFM (Gao et al. 2006, IEEE TGRS 44(8):2207-2218), written from the paper and vectorised in torch.

For each fine pixel, neighbours in a moving window that are spectrally similar in the fine reference
(per band: |F1(n) - F1(c)| <= 2σ_b/m) and no worse than the centre in spectral (|F1 - C1|) and temporal
(|C2 - C1|) difference, give predictions F1(n) + C2(n) - C1(n), weighted by 1 / (S · T · D) with
D = 1 + d / (w/2). The measurement uncertainties regularise S and T so identical pixels get a large
but finite weight. Without a coarse reference, C1 is simulated from F1 with a Gaussian PSF.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch

from .. import roles
from ..core.options import Option
from ..core.psf import psf_radius, reflect_pad, simulate_coarse
from .contract import MethodContext, MethodSpec, TileBatch

OPTIONS = {
    "window": Option(31, 1, 255, "side of the moving window in fine pixels"),
    "classes": Option(4, 1, 64, "m in the similarity threshold 2σ/m: more classes, stricter similarity"),
    "uncertainty_fine": Option(0.002, 0.0, 1.0, "fine-sensor measurement uncertainty (reflectance)"),
    "uncertainty_coarse": Option(0.002, 0.0, 1.0, "coarse-sensor measurement uncertainty (reflectance)"),
}


def _option(context: MethodContext, name: str):
    return OPTIONS[name].kind(context.options.get(name, OPTIONS[name].default))


def _halo(context: MethodContext) -> int:
    half = _option(context, "window") // 2
    simulated = roles.COARSE_REFERENCE not in context.given
    return half + (psf_radius(context.ratio) if simulated else 0)


def _build(context: MethodContext):
    half = _option(context, "window") // 2
    classes = _option(context, "classes")
    sigma_fine = _option(context, "uncertainty_fine")
    sigma_coarse = _option(context, "uncertainty_coarse")
    sigma_s = math.hypot(sigma_fine, sigma_coarse)
    sigma_t = math.sqrt(2) * sigma_coarse
    threshold = torch.tensor(context.fine_std, device=context.device).view(1, -1, 1, 1) * (2.0 / classes)
    inverse_distance = [[1.0 / (1.0 + math.hypot(dy, dx) / max(half, 1)) for dx in range(-half, half + 1)]
                        for dy in range(-half, half + 1)]

    def run(batch: TileBatch) -> torch.Tensor:
        f1, c2 = batch.fine_reference, batch.coarse_target
        c1 = batch.coarse_reference if batch.coarse_reference is not None else simulate_coarse(f1, context.ratio)
        with torch.autocast(f1.device.type, enabled=False):  # the weights are sums, kept in the inputs' precision
            return _fuse(f1, c1, c2, batch.valid, threshold.to(f1.dtype), half, sigma_s, sigma_t,
                         torch.tensor(inverse_distance, dtype=f1.dtype, device=f1.device), context.tick)

    return run


_KEYS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
         torch.float64: torch.int64}
"""The signed integer type a float type's bits are read as: for floats ≥ 0 the bits order like the values."""
CPU_STRIP = 1 << 17
"""Elements (offsets × pixels) one CPU operation handles: a strip's temporaries stay in the cores' caches."""
GPU_STRIP = 1 << 26
"""The same on a GPU, where larger operations are better as long as memory allows."""


def _fuse(f1, c1, c2, valid, threshold, half, sigma_s, sigma_t, inverse_distance, tick) -> torch.Tensor:
    """The STARFM sums for every pixel of a (B, C, H, W) batch, one row of window offsets at a time.

    For each row of offsets and each strip of a few image rows, the whole row of offsets is one set of
    operations on strided views (offset × row × band × column) of the padded neighbour terms, so each pass
    over memory does `side` offsets and a strip's temporaries stay in cache. The three tests are folded into
    the sign bit of one integer per pixel and offset: for floats ≥ 0 (absolute differences, limits), a ≤ b
    exactly when bits(a) - 1 - bits(b) < 0, so each test is an integer subtraction, the tests are combined
    with `&`, and an arithmetic shift turns the sign into an all-ones or all-zeros mask that selects each
    neighbour's weight. Weighted by 1/D, the selected weights are summed over the row of offsets by one
    matrix-vector product. The decisions are exactly those of the comparisons; only the order of the sums
    differs from one offset at a time (float rounding).
    """
    batch, bands, height, width = f1.shape
    side = 2 * half + 1
    dtype = f1.dtype
    if dtype not in _KEYS:
        return _fuse(f1.float(), c1.float(), c2.float(), valid, threshold.float(), half, sigma_s, sigma_t,
                     inverse_distance.float(), tick).to(dtype)
    key = _KEYS[dtype]
    sign = torch.iinfo(key).bits - 1

    def rows_outside(x):  # (B, C, h, w) -> (B, h, C, w): one strip of rows of every band is contiguous
        return x.permute(0, 2, 1, 3).contiguous()

    centre = rows_outside(f1)
    limit_s = rows_outside((f1 - c1).abs() + sigma_s).view(key)
    limit_t = rows_outside((c2 - c1).abs() + sigma_t).view(key)
    # Everything that depends on the neighbour alone is computed once on the padded tile.
    pf1, pc1, pc2 = (reflect_pad(x, half) for x in (f1, c1, c2))
    spectral = (pf1 - pc1).abs()
    temporal = (pc2 - pc1).abs()
    inverse_cost = reflect_pad(valid.to(dtype), half) / ((spectral + sigma_s) * (temporal + sigma_t))
    weighted = (inverse_cost * (pf1 + pc2 - pc1)).view(key)  # weight × candidate F1 + C2 - C1
    inverse_cost = inverse_cost.view(key)
    spectral, temporal = (x.view(key).sub_(1) for x in (spectral, temporal))  # bits(a) - 1
    similar = (threshold.view(-1, 1).view(key) + 1)  # per band: bits(2σ/m) + 1
    padded_height, padded_width = pf1.shape[-2:]
    plane = padded_height * padded_width

    numerator = torch.zeros((batch, height, bands, width), dtype=dtype, device=f1.device)
    denominator = torch.zeros_like(numerator)
    per_row = side * bands * width
    rows = max(1, min(height, (GPU_STRIP if f1.device.type == "cuda" else CPU_STRIP) // per_row))
    strips = [(b, top, min(rows, height - top)) for b in range(batch) for top in range(0, height, rows)]
    workers = min(torch.get_num_threads(), len(strips)) if f1.device.type == "cpu" else 1
    size = side * rows * bands * width
    buffers = [(torch.empty(size, dtype=dtype, device=f1.device), torch.empty(size, dtype=key, device=f1.device))
               for _ in range(workers)]

    def strip(row, b, top, count, buffer):
        shape = (side, count, bands, width)
        strides = (1, padded_width, plane, 1)
        start = (b * bands * plane) + (top + row) * padded_width
        at = (b, slice(top, top + count))
        difference, scratch = buffer
        test = difference[: side * count * bands * width].view(shape)
        scratch = scratch[: test.numel()].view(shape)
        torch.sub(pf1.as_strided(shape, strides, start), centre[at], out=test)
        test.abs_()
        test = test.view(key)
        test -= similar  # sign set: |F1(n) - F1(c)| <= 2σ/m
        torch.sub(spectral.as_strided(shape, strides, start), limit_s[at], out=scratch)
        test &= scratch  # and |F1(n) - C1(n)| <= |F1(c) - C1(c)| + σ_s
        torch.sub(temporal.as_strided(shape, strides, start), limit_t[at], out=scratch)
        test &= scratch  # and |C2(n) - C1(n)| <= |C2(c) - C1(c)| + σ_t
        test >>= sign  # all ones where the neighbour qualifies, else zero
        for sums, term in ((denominator, inverse_cost), (numerator, weighted)):
            torch.bitwise_and(term.as_strided(shape, strides, start), test, out=scratch)
            sums[at].view(-1).addmv_(scratch.view(side, -1).view(dtype).t(), inverse_distance[row])

    inference = torch.is_inference_mode_enabled()

    def work(row, queue, buffer):
        with torch.inference_mode(inference):
            for b, top, count in queue:
                strip(row, b, top, count, buffer)

    if workers > 1:
        # One worker per torch thread, each running single-threaded operations on its own strips: no barrier
        # after every operation, and a worker that the system preempts holds up only its own strip.
        threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="starfm")
        torch.set_num_threads(1)
    try:
        for row in range(side):
            tick(row / side)
            queue = iter(strips)  # shared: each worker takes the next strip (next() on it is atomic)
            helpers = [pool.submit(work, row, queue, buffer) for buffer in buffers[1:]] if workers > 1 else []
            work(row, queue, buffers[0])
            for helper in helpers:
                helper.result()
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
            torch.set_num_threads(threads)
    fallback = f1 + c2 - c1
    numerator, denominator = numerator.permute(0, 2, 1, 3), denominator.permute(0, 2, 1, 3)
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-12), fallback).contiguous()


SPECS = (
    MethodSpec(
        name="starfm",
        description="STARFM (Gao et al. 2006): weighted similar neighbours in a moving window; no training",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE,),
        halo=_halo,
        build=_build,
        options=OPTIONS,
    ),
)
