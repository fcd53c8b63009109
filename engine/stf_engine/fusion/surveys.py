"""The scene pre-passes of a method (`MethodSpec.reference_survey`, then `MethodSpec.survey`), and a cache
that keeps what the references alone taught, for the next target date fused from the same references."""
from __future__ import annotations

import itertools
import os
from typing import Callable, Dict, Hashable, Iterable, Iterator, Mapping, Optional, Tuple

from .. import roles
from ..inputs.aligned import AlignedInputs
from ..methods.contract import MethodContext, MethodSpec, TileBatch
from .request import FusionRequest



class ReferenceSurveys:
    """Reference-survey results by method, options, alignment and the reference files as they are on disk.

    A series passes one to every date it fuses, so FSDAF classifies each reference once, not once a date."""

    def __init__(self):
        self._found: Dict[Hashable, Mapping[str, object]] = {}
        self.computed = 0
        """How many reference surveys were run (the rest were reused)."""

    def __len__(self) -> int:
        return len(self._found)

    def get(self, key: Hashable, compute: Callable[[], Mapping[str, object]]) -> Mapping[str, object]:
        if key not in self._found:
            self._found[key] = compute()
            self.computed += 1
        return self._found[key]


def run_surveys(spec: MethodSpec, context: MethodContext, request: FusionRequest, inputs: AlignedInputs,
                cache: Optional[ReferenceSurveys] = None) -> MethodContext:
    """The context with the method's pre-pass results in `survey`, its reference survey from `cache` if given.
    The scene survey reads every input; the reference survey sees the references alone, masked by them alone (its
    batches have no coarse target), so it is the same for every target date (a series' restored targets have gaps
    of their own)."""
    passes = itertools.count()
    scene = _reporting(lambda: inputs.read_blocks(inputs.ratio, context.device), inputs, context.tick, passes)
    reference = None
    if spec.reference_survey is not None:
        references = _reporting(lambda: inputs.read_blocks(inputs.ratio, context.device,
                                                           left_out=(roles.COARSE_TARGET,)),
                                inputs, context.tick, passes)
        compute = lambda: spec.reference_survey(context, references)  # noqa: E731
        reference = compute if cache is None else lambda: cache.get(_key(spec, context, request, inputs), compute)
    return spec.surveyed(context, scene, reference)


def _reporting(read: Callable[[], Iterable[TileBatch]], inputs: AlignedInputs, tick: Callable[..., None],
               passes: Iterator[int]) -> Callable[[], Iterator[TileBatch]]:
    """`read`, each pass over the scene ticking its share of the surveys done as its blocks go by: how many passes a
    survey makes is its own affair (FSDAF makes three), so the n-th covers [1 − 2⁻ⁿ, 1 − 2⁻⁽ⁿ⁺¹⁾]. The bar moved
    nothing through FSDAF's 20 s of surveys on a 4000² scene."""
    blocks = max(1, inputs.block_count(inputs.ratio))

    def scene() -> Iterator[TileBatch]:
        index = next(passes)
        low, high = 1 - 0.5 ** index, 1 - 0.5 ** (index + 1)
        for done, block in enumerate(read(), 1):
            yield block
            tick(low + (high - low) * done / blocks)

    return scene


def _key(spec: MethodSpec, context: MethodContext, request: FusionRequest, inputs: AlignedInputs) -> Tuple:
    """What a reference survey depends on: never the coarse target, so dates with the same references share it."""
    files = tuple((role, os.path.abspath(path), *_stamp(path)) for role, path in sorted(request.inputs().items())
                  if role != roles.COARSE_TARGET and spec.accepts(role))
    options = repr(sorted(context.options.items()))
    return spec.name, options, repr(request.alignment(spec.coarse_resampling)), inputs.coarse_shift, files


def _stamp(path: str) -> Tuple[int, int]:
    """Size and modification time: a reference rewritten between runs is surveyed again."""
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns
