"""`make demo`: fuse the bundled Shenzhen sample, write error maps and plots, and compare every method.

Predicts Landsat 2002-11-07 from the Landsat/MODIS pair of 2000-11-01 and MODIS 2002-11-07, scores each
method against the real Landsat image of 2002-11-07, and prints where everything was written.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Tuple

from .. import COARSE_REFERENCE, EvaluationRequest, FusionRequest, evaluate, fuse, list_methods
from .common import shift_line, warning_lines

FINE_2000 = "L72000306_SZ_B432_30m.tif"
TRUTH_2002 = "L72002311_SZ_B432_30m.tif"
COARSE_2000 = "MOD09_2000306_SZ_B214_250m.tif"
COARSE_2002 = "MOD09_2002311_SZ_B214_250m.tif"
MODIS_PIXEL_METRES = 250
MAIN_METHOD = "starfm"


def comparison_methods() -> List[str]:
    """STARFM first, then the baselines, then every deep model that ships demo weights."""
    methods = list_methods()
    deep = [name for name, spec in methods.items() if spec.needs_weights and spec.default_weights
            and os.path.exists(spec.default_weights)]
    return [MAIN_METHOD, "delta", "cubic"] + deep


def run(sample: str, out: str) -> List[Tuple[str, Dict[str, float], float]]:
    """Fuse and score every comparison method; return (method, overall scores, seconds) rows."""
    sample, out = os.path.abspath(sample), os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    rows = []
    methods = list_methods()
    for method in comparison_methods():
        main = method == MAIN_METHOD
        uses_reference = methods[method].accepts(COARSE_REFERENCE)
        request = FusionRequest(
            coarse_target=os.path.join(sample, COARSE_2002),
            fine_reference=os.path.join(sample, FINE_2000),
            coarse_reference=os.path.join(sample, COARSE_2000) if uses_reference else None,
            output=os.path.join(out, f"fused_{method}_2002.tif"),
            method=method,
            coarse_resolution=MODIS_PIXEL_METRES,
            register=True,
            error_maps_dir=os.path.join(out, "error_maps") if main else None,
            truth=os.path.join(sample, TRUTH_2002) if main else None,
        )
        print(f"fusing with {method} …", flush=True)
        result = fuse(request)
        report = evaluate(EvaluationRequest(
            prediction=result.output,
            truth=os.path.join(sample, TRUTH_2002),
            fine_reference=os.path.join(sample, FINE_2000) if main else None,
            coarse=os.path.join(sample, COARSE_2002) if main else None,
            out_dir=os.path.join(out, "evaluation") if main else None,
            plots=main,
            ratio=result.ratio,
        ))
        rows.append((method, report.overall, result.seconds))
        if main:
            main_result, main_report = result, report

    print(f"\n{shift_line(main_result.coarse_shift)} to match the Landsat grid (--register)")
    print("\nscores against the real Landsat image of 2002-11-07 (reflectance):")
    print(f"  {'method':<10}{'RMSE':>8}{'SSIM':>8}{'CC':>8}{'SAM°':>8}{'ERGAS':>8}{'s':>7}")
    for method, overall, seconds in rows:
        print(f"  {method:<10}{overall['rmse']:8.4f}{overall['ssim']:8.4f}{overall['cc']:8.4f}"
              f"{overall['sam']:8.2f}{overall['ergas']:8.3f}{seconds:7.1f}")
    print(f"\nfused image ({MAIN_METHOD}): {main_result.output}")
    for name, path in main_result.error_maps.items():
        print(f"error map {name}: {path}")
    for name, path in main_report.files.items():
        print(f"evaluation {name}: {path}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sample", help="folder holding the Shenzhen sample")
    parser.add_argument("out", help="output folder")
    args = parser.parse_args(argv)
    with warning_lines():
        run(args.sample, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
