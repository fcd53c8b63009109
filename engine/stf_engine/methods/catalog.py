"""The explicit method catalog: every built-in method by name, collected from each module's `SPECS`."""
from __future__ import annotations

from typing import Dict

from .. import roles
from ..core.options import Given, check_whole, defaults, describe_all, parse
from ..errors import StfError
from . import baselines, deep, estarfm, fitfc, fsdaf, starfm
from .contract import MethodContext, MethodSpec
from .ensemble import ensemble
from .residual import with_residual_option

def _chosen_first(context: MethodContext):
    raise StfError("auto picks its method before tiling; call fuse(), which resolves it")


AUTO = MethodSpec(
    name="auto",
    description="Scores the classic methods on the scene itself (Wald's reduced-resolution validation) and runs "
    "the best; never a method that does worse than delta there",
    required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
    optional=(roles.COARSE_REFERENCE, roles.FINE_REFERENCE_2, roles.COARSE_REFERENCE_2),
    halo=lambda context: 0,
    build=_chosen_first,
    chooses=True,
)
METHODS: Dict[str, MethodSpec] = {
    AUTO.name: AUTO,
    **{spec.name: with_residual_option(spec) for module in (baselines, starfm, fitfc, fsdaf, estarfm, deep) for spec in module.SPECS},
}
"""Every method also takes the shared `residual` option (residual compensation, see residual.py)."""


def list_methods() -> Dict[str, MethodSpec]:
    """All methods by name, baselines first, then classic methods, then the deep models."""
    return dict(METHODS)


def get_method(name: str) -> MethodSpec:
    """A method by name; "a+b" is the pixel-wise mean of methods a and b (what auto may choose)."""
    if "+" in name:
        return ensemble([get_method(part) for part in name.split("+")])
    if name not in METHODS:
        raise StfError(f"unknown method '{name}'; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def parse_options(method: str, given: Given) -> Dict[str, object]:
    """The method's options typed and range-checked; StfError names the valid options and their ranges."""
    spec = get_method(method)
    return parse(spec.options, given, f"method '{spec.name}'")


def resolved_options(spec: MethodSpec, given: Given) -> Dict[str, object]:
    """Every option of the method: the given ones parsed, the rest at their defaults."""
    return {**defaults(spec.options), **parse(spec.options, given, f"method '{spec.name}'")}


def method_halo(method, ratio: int, given) -> int:
    """The method's (a spec or a name) halo at a coarse/fine ratio with the given input roles (for listings; weights
    as shipped)."""
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    check_whole(ratio, "the coarse/fine ratio", 1)
    context = MethodContext(ratio=ratio, bands=1, given=frozenset(given), device=None, fine_std=(0.0,))
    return spec.halo(context)


def describe_options(method) -> str:
    """A method's options with defaults and ranges, e.g. 'window=31 (integer 1..255), …', or 'no options'."""
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    return describe_all(spec.options)
