"""`make bench`: run every bench/bench_*.py section and write the tables to one Markdown report."""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu.stdout.strip() or platform.processor()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"{gpu}; Python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument("--only", help="run only sections whose file name contains this text")
    args = parser.parse_args()
    parts = [f"# STF benchmarks\n\nMachine: {machine()}  \nDate: {time.strftime('%Y-%m-%d')}\n"]
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and args.only not in path.name:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        print(f"running {path.name} …", file=sys.stderr)
        parts.append(module.section())
    pathlib.Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
