"""Helpers shared by the subcommands: progress bars and argument parsing."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Tuple

from tqdm import tqdm


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A tqdm bar on stderr driven by the engine's `progress(fraction, message)` callable."""
    with tqdm(total=1000, desc=description, unit="‰", leave=False, dynamic_ncols=True) as bar:

        def update(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(max(0, int(round(fraction * 1000)) - bar.n))

        yield update


def int_list(text: str) -> Tuple[int, ...]:
    """'3,2,1' → (3, 2, 1)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated band numbers, got '{text}'") from None


def float_pair(text: str) -> Tuple[float, float]:
    """'-5.5,-5.3' → (-5.5, -5.3)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected two comma-separated numbers, got '{text}'")
    return float(parts[0]), float(parts[1])
