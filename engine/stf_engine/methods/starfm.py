"""STARFM (Gao et al. 2006, IEEE TGRS 44(8):2207-2218), written from the paper and vectorised in torch.

For each fine pixel, neighbours in a moving window that are spectrally similar in the fine reference
(per band: |F1(n) - F1(c)| <= 2σ_b/m) and no worse than the centre in spectral (|F1 - C1|) and temporal
(|C2 - C1|) difference, give predictions F1(n) + C2(n) - C1(n), weighted by 1 / (S · T · D) with
D = 1 + d / (w/2). The measurement uncertainties regularise S and T so identical pixels get a large
but finite weight. Without a coarse reference, C1 is simulated from F1 with a Gaussian PSF.

With a second reference pair (F3, C3), as the paper allows, the candidates of both pairs enter one
weighted mean: their weights are summed over both pairs' windows.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import torch

from .. import roles
from ..core.options import Option
from ..core.psf import psf_radius, reflect_pad
from .contract import MethodContext, MethodSpec, TileBatch, option_reader, tick_within

OPTIONS = {
    "window": Option(31, 1, 255, "side of the moving window in fine pixels"),
    "classes": Option(4, 1, 64, "m in the similarity threshold 2σ/m: more classes, stricter similarity"),
    "uncertainty_fine": Option(0.002, 0.0, 1.0, "fine-sensor measurement uncertainty (reflectance)"),
    "uncertainty_coarse": Option(0.002, 0.0, 1.0, "coarse-sensor measurement uncertainty (reflectance)"),
}


_option = option_reader(OPTIONS)


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
        c1 = batch.coarse_reference_or_simulated(context.ratio)
        pairs = [(f1, c1)]
        if batch.fine_reference_2 is not None and batch.coarse_reference_2 is not None:
            pairs.append((batch.fine_reference_2, batch.coarse_reference_2))
        with torch.autocast(f1.device.type, enabled=False):  # the weights are sums, kept in the inputs' precision
            distance = torch.tensor(inverse_distance, dtype=f1.dtype, device=f1.device)
            sums = [_sums(fine, coarse, c2, batch.valid, threshold.to(f1.dtype), half, sigma_s, sigma_t, distance,
                          tick_within(context.tick, index / len(pairs), (index + 1) / len(pairs)))
                    for index, (fine, coarse) in enumerate(pairs)]
            numerator = sum(s[0] for s in sums)
            denominator = sum(s[1] for s in sums)
            fallback = sum(fine + c2 - coarse for fine, coarse in pairs) / len(pairs)
            predicted = torch.where(denominator > 0, numerator / denominator.clamp_min(1e-12), fallback)
            return predicted.to(f1.dtype).contiguous()

    return run


_KEYS = {torch.float32: torch.int32, torch.float64: torch.int64}
"""The signed integer type a float type's bits are read as: for floats ≥ 0 the bits order like the values.
Other float types are computed in float32 (half precision could not hold the weights' sums)."""
CPU_STRIP = 1 << 18
"""Elements (offsets × pixels) one CPU operation handles: a strip's temporaries stay in the cores' caches."""
GPU_STRIP = 1 << 26
"""The same on a GPU, where larger operations are better as long as memory allows."""


def _sums(f1, c1, c2, valid, threshold, half, sigma_s, sigma_t, inverse_distance, tick):
    """(Σ weight·candidate, Σ weight) over each pixel's window for a (B, C, H, W) batch and one reference pair.

    Layout: the bands of all tiles are interleaved pixel by pixel, each padded row one run of
    L = (W + 2·half)·B·C values, so a pixel's neighbour `dx` columns away is dx·B·C values along and the
    centres of one image row (every tile and band) are one contiguous run of W·B·C. The centres are cut into
    strips of whole rows (sized by CPU_STRIP); a worker takes a strip through every row of offsets, each row
    of offsets being one set of operations on strided views (offset × row × column) of the padded neighbour
    terms. So each operation covers `side` offsets over long contiguous runs, its temporaries stay in cache,
    and a strip's centre values are read once for the whole window.

    The three tests are folded into the sign bit of one integer per pixel and offset: for floats ≥ 0
    (absolute differences and limits), a ≤ b exactly when bits(a) - 1 - bits(b) < 0, so each test is an
    integer subtraction (no comparison kernels, no bool tensors), the tests are combined with `&`, and an
    arithmetic shift turns the sign into a mask of all ones or all zeros that selects the neighbour's weight
    1/(S·T) and weight × candidate (two float bit patterns, or zeros). A (1 × side) @ (side × ...) product
    weights them by 1/D and sums them over the row of offsets. The decisions are exactly the comparisons';
    only the order of the sums differs from adding one offset at a time (float rounding).

    On the CPU, one worker per torch thread takes strips from a shared queue and runs single-threaded
    operations (torch's own threads are set to 1 meanwhile, the padding included): no barrier after every
    operation as with intra-op threads, and a worker that the system preempts holds up only its own strip.
    The calling thread works too and reports progress as strips complete, `side` ticks in all (one per row
    of offsets' worth of work), so a cancel stops the tile within one strip. A GPU takes a few large strips.
    """
    if f1.dtype not in _KEYS:
        return _sums(f1.float(), c1.float(), c2.float(), valid, threshold.float(), half, sigma_s, sigma_t,
                     inverse_distance.float(), tick)
    threads = torch.get_num_threads()
    arguments = (f1, c1, c2, valid, threshold, half, sigma_s, sigma_t, inverse_distance, tick)
    if f1.device.type != "cpu" or threads == 1:
        return _window_sums(*arguments, workers=1)
    torch.set_num_threads(1)  # from the padding on: the workers are the parallelism, torch's threads would contend
    try:
        return _window_sums(*arguments, workers=threads)
    finally:
        torch.set_num_threads(threads)


def _window_sums(f1, c1, c2, valid, threshold, half, sigma_s, sigma_t, inverse_distance, tick, workers):
    """_sums with `workers` threads (the calling one included) sharing the strips."""
    batch, bands, height, width = f1.shape
    side = 2 * half + 1
    dtype, device = f1.dtype, f1.device
    key = _KEYS[dtype]
    sign = torch.iinfo(key).bits - 1
    padded_height, padded_width = height + 2 * half, width + 2 * half
    step = batch * bands  # values per pixel
    length = padded_width * step  # one padded row
    columns = width * step  # the centres of one row
    first = half * step  # where they start in their padded row

    def interleave(x):  # (B, C, H, W) padded -> (Hp, Wp·B·C)
        return reflect_pad(x, half).expand(batch, bands, -1, -1).permute(2, 3, 0, 1).reshape(padded_height, length)

    # Everything that depends on the neighbour alone is computed once on the padded tile.
    fine, coarse_1, coarse_2 = interleave(f1), interleave(c1), interleave(c2)
    spectral = torch.sub(fine, coarse_1).abs_()
    temporal = torch.sub(coarse_2, coarse_1).abs_()
    # The centre's limits, at the same places (the padding repeats the tile's own values).
    limit_s, limit_t = spectral + sigma_s, temporal + sigma_t
    terms = torch.empty((padded_height, 2, length), dtype=dtype, device=device)  # per row: weight, × candidate
    inverse_cost = torch.div(interleave(valid.to(dtype)), torch.mul(limit_s, limit_t, out=terms[:, 1]),
                             out=terms[:, 0])  # 1 / (S·T), zero where invalid
    candidate = torch.add(fine, coarse_2, out=coarse_2).sub_(coarse_1)  # F1 + C2 - C1
    torch.mul(inverse_cost, candidate, out=terms[:, 1])
    del coarse_1, coarse_2, candidate
    terms, limit_s, limit_t = terms.view(key), limit_s.view(key), limit_t.view(key)
    spectral, temporal = (x.view(key).sub_(1) for x in (spectral, temporal))  # bits(a) - 1
    band = torch.arange(columns, device=device) % bands
    similar = (threshold.view(-1)[band].view(key) + 1)  # bits(2σ_b/m) + 1 for each column's band
    shift = torch.tensor(sign, dtype=key, device=device)

    sums = torch.zeros((height, 2, columns), dtype=dtype, device=device)  # per row: denominator, numerator
    budget = GPU_STRIP if device.type == "cuda" else CPU_STRIP
    if side * columns <= 2 * budget:  # strips of whole rows
        rows, chunk = max(1, min(height, budget // (side * columns))), columns
    else:  # strips of part of a row
        rows, chunk = 1, -(-columns // -(-side * columns // budget))
    strips = [(top, min(rows, height - top), left, min(chunk, columns - left))
              for top in range(0, height, rows) for left in range(0, columns, chunk)]
    weights = [inverse_distance[row: row + 1] for row in range(side)]  # 1/D of each row of offsets, (1, side)

    def temporaries(count, wide):
        """One worker's buffers for a strip: the test as float and as integer, a scratch, the selected terms."""
        shape = (side, count, wide)
        test = torch.empty(shape, dtype=dtype, device=device)
        selected = torch.empty((side, count, 2, wide), dtype=key, device=device)
        other = selected.view(-1)[: test.numel()].view(shape)  # a scratch for the tests, free until selected
        return test, test.view(key), test.view(key).unsqueeze(2), other, selected, selected.view(dtype).view(side, -1)

    def strip(top, count, left, wide, buffers):
        """All rows of offsets for the centres in rows top..top+count-1, columns left..left+wide-1."""
        test, test_bits, mask, other, selected, terms_selected = buffers
        # The neighbours of the strip for each row of offsets (offset × row × column views), the centre's values...
        shape, strides, start = (side, side, count, wide), (length, step, length, 1), top * length + left
        fine_near, spectral_near, temporal_near = (x.as_strided(shape, strides, start).unbind(0)
                                                   for x in (fine, spectral, temporal))
        pair_near = terms.as_strided((side, side, count, 2, wide), (2 * length, step, 2 * length, length, 1),
                                     2 * top * length + left).unbind(0)
        centre = (slice(half + top, half + top + count), slice(first + left, first + left + wide))
        fine_centre, limit_s_centre, limit_t_centre = fine[centre], limit_s[centre], limit_t[centre]
        similar_here = similar[left: left + wide]
        # ...and where its sums go: (1, rows × 2 × columns) for whole rows, else a (2, wide) part of one row.
        out = sums[top: top + count].view(1, -1) if wide == columns else sums[top, :, left: left + wide]
        for row in range(side):
            torch.sub(fine_near[row], fine_centre, out=test)
            test.abs_()
            test_bits.sub_(similar_here)  # sign set: |F1(n) - F1(c)| <= 2σ_b/m
            torch.sub(spectral_near[row], limit_s_centre, out=other)
            test_bits.bitwise_and_(other)  # and |F1(n) - C1(n)| <= |F1(c) - C1(c)| + σ_s
            torch.sub(temporal_near[row], limit_t_centre, out=other)
            test_bits.bitwise_and_(other)  # and |C2(n) - C1(n)| <= |C2(c) - C1(c)| + σ_t
            test_bits.bitwise_right_shift_(shift)  # all ones where the neighbour qualifies, else zero
            torch.bitwise_and(pair_near[row], mask, out=selected)  # its two terms, or zeros
            # Summed over the row of offsets, weighted by 1/D: (1, side) @ (side, row × term × column).
            if wide == columns:
                out.addmm_(weights[row], terms_selected)
            else:
                for term in range(2):
                    out[term].addmv_(selected[:, 0, term].view(dtype).t(), weights[row][0])

    workers = min(workers, len(strips))
    inference = torch.is_inference_mode_enabled()
    queue = iter(strips)  # next() on it is atomic: each strip goes to one worker
    progress = {"done": 0, "reported": 0, "stop": False}
    lock = threading.Lock()

    def work(report):
        buffers = {}
        with torch.inference_mode(inference):
            for top, count, left, wide in queue:
                if progress["stop"]:
                    return
                if (count, wide) not in buffers:
                    buffers[(count, wide)] = temporaries(count, wide)
                strip(top, count, left, wide, buffers[(count, wide)])
                with lock:
                    progress["done"] += 1
                report()

    def report():  # on the calling thread: tick for every row of offsets' worth of strips done since the last
        while progress["reported"] < side and progress["done"] * side >= progress["reported"] * len(strips):
            tick(progress["reported"] / side)
            progress["reported"] += 1

    pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="starfm") if workers > 1 else None
    try:
        report()
        helpers = [pool.submit(work, lambda: None) for _ in range(workers - 1)]
        work(report)
        while helpers:
            finished, pending = wait(helpers, timeout=0.05)
            for helper in finished:
                helper.result()
            helpers = list(pending)
            report()
        report()
    finally:
        progress["stop"] = True
        if pool is not None:
            pool.shutdown()

    denominator, numerator = sums[:, 0], sums[:, 1]

    def tiles(x):  # (H, W·B·C) -> (B, C, H, W)
        return x.view(height, width, batch, bands).permute(2, 3, 0, 1)

    return tiles(numerator), tiles(denominator)


SPECS = (
    MethodSpec(
        name="starfm",
        description="STARFM (Gao et al. 2006): weighted similar neighbours in a moving window; no training",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE, roles.FINE_REFERENCE_2, roles.COARSE_REFERENCE_2),
        halo=_halo,
        build=_build,
        options=OPTIONS,
    ),
)
