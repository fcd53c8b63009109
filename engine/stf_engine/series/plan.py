"""Which dates a series run predicts, and which fine references each one uses (nearest on each side first)."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import StfError
from ..inputs.series_list import Dated, list_series, parse_date
from .request import SeriesRequest

MIN_CLEAR = 0.05
"""Share of clear pixels below which a fine reference is not used at all (it would be mostly restored)."""


@dataclass(frozen=True)
class PlannedDate:
    """A target date and its references, best first: the nearest before and the nearest after (or the two nearest
    on one side when the other has none within the gap); the rest, nearest first, only restore masked pixels."""

    date: str
    """YYYY-MM-DD, as are the references."""
    references: Tuple[str, ...]
    has_fine: bool
    """The date has a fine image of its own: the output keeps it where clear and scores the fusion against it."""

    @property
    def usable(self) -> bool:
        return bool(self.references)

    @property
    def pairs(self) -> Tuple[str, ...]:
        """The one or two references the fusion method itself gets."""
        return self.references[:2]


def plan_series(request: SeriesRequest, clear: Optional[Dict[str, float]] = None) -> Tuple[PlannedDate, ...]:
    """Target dates in the request's range with their references; `clear` (YYYY-MM-DD → clear share of its fine image)
    drops references that are almost all masked. Reads the series listing only, no raster."""
    entries = list_series(request.series, pairs_only=False)
    return plan_entries(entries, request, clear)


def plan_entries(entries: Sequence[Dated], request: SeriesRequest,
                 clear: Optional[Dict[str, float]] = None) -> Tuple[PlannedDate, ...]:
    clear = clear or {}
    pairs = [e for e in entries if e.coarse and e.fine and clear.get(e.day.isoformat(), 1.0) >= MIN_CLEAR]
    targets = _targets(entries, request)
    planned = []
    for target in targets:
        near = [e for e in pairs if e.day != target.day and abs((e.day - target.day).days) <= request.max_gap]
        references = tuple(e.day.isoformat() for e in _ordered(near, target.day))
        planned.append(PlannedDate(target.day.isoformat(), references, bool(target.fine)))
    return tuple(planned)


def _targets(entries: Sequence[Dated], request: SeriesRequest) -> List[Dated]:
    coarse = [e for e in entries if e.coarse]
    if not coarse:
        raise StfError(f"the series {request.series} has no coarse image to fuse")
    low = _bound(request.date_from, "--from", datetime.date.min)
    high = _bound(request.date_to, "--to", datetime.date.max)
    if low > high:
        raise StfError(f"--from {request.date_from} is after --to {request.date_to}")
    chosen = [e for e in coarse if low <= e.day <= high]
    if request.dates:
        wanted = {parse_date(d) for d in request.dates}
        missing = wanted - {e.day for e in coarse}
        if missing:
            raise StfError(f"date(s) {', '.join(sorted(str(d) for d in missing))} have no coarse image in the series "
                           f"{request.series}")
        chosen = [e for e in chosen if e.day in wanted]
    if not chosen:
        raise StfError(f"no coarse date of the series {request.series} lies in the requested range")
    return chosen


def _ordered(near: Sequence[Dated], day: datetime.date) -> List[Dated]:
    """Nearest before and nearest after first; with one side empty, the two nearest on the other; then the rest."""
    by_distance = sorted(near, key=lambda e: (abs((e.day - day).days), e.day))
    before = next((e for e in by_distance if e.day < day), None)
    after = next((e for e in by_distance if e.day > day), None)
    first = [e for e in (before, after) if e is not None]
    first.sort(key=lambda e: abs((e.day - day).days))
    return first + [e for e in by_distance if e not in first]


def _bound(text: Optional[str], flag: str, unset: datetime.date) -> datetime.date:
    """A first or last date (`flag` names it in the message when it is not a date), `unset` when not given."""
    if not text:
        return unset
    try:
        return parse_date(text)
    except StfError as exc:
        raise StfError(f"{flag}: {exc}") from None
