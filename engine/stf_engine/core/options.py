"""Declared, typed and range-checked parameters of methods and models (`window=15`, `classes=6`).

A method or model declares each parameter once as an `Option`; text from the command line, Processing or
the dialog is parsed against those declarations, so a typo or a value out of range is refused with one
line naming the valid options instead of being silently ignored. The requests' own numbers (tile, batch, …)
are checked by `check_whole` and `check_real`: one line naming the flag and the allowed range.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Union

from ..errors import StfError

Given = Union[None, str, Sequence[str], Mapping[str, object]]
"""Options as 'k=v, k=v' text, a list of 'k=v' items (one per --option), or a mapping of values."""


@dataclass(frozen=True)
class Option:
    """One parameter: its default (whose type is the option's type), inclusive bounds and a short help."""

    default: Union[int, float, bool, str]
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    help: str = ""

    @property
    def kind(self) -> type:
        return type(self.default)

    def describe(self, name: str) -> str:
        """'window=31 (integer 3..255)' as shown in errors, help texts and the dialog."""
        kind = {int: "integer", float: "number", bool: "true/false", str: "text"}[self.kind]
        if self.minimum is not None and self.maximum is not None:
            kind += f" {_number(self.minimum)}..{_number(self.maximum)}"
        elif self.minimum is not None:
            kind += f" ≥ {_number(self.minimum)}"
        elif self.maximum is not None:
            kind += f" ≤ {_number(self.maximum)}"
        return f"{name}={_number(self.default)} ({kind})"

    def value_in(self, options: Mapping[str, object], name: str) -> Union[int, float, bool, str]:
        """This option's value among a run's options (its default when absent), as the option's type."""
        return self.kind(options.get(name, self.default))

    def convert(self, value: object) -> Union[int, float, bool, str]:
        """The value as the option's type, or ValueError saying what was expected."""
        kind = self.kind
        if kind is bool:
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is str:
            return str(value)
        number = float(value) if isinstance(value, (int, float)) else _as_number(value, kind)
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        if kind is int:
            if number != int(number):
                raise ValueError("expected a whole number")
            converted = int(number)
        else:
            converted = number
        if (self.minimum is not None and converted < self.minimum) or (
            self.maximum is not None and converted > self.maximum
        ):
            raise ValueError("out of range")
        return converted


def _as_number(value: object, kind: type) -> float:
    """A number given as text, or ValueError saying it is none ("'abc' is not a whole number")."""
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"'{value}' is not a {'whole number' if kind is int else 'number'}") from None


def _number(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_all(declared: Mapping[str, Option]) -> str:
    """Every option with its default, type and range; 'no options' when there are none."""
    return ", ".join(option.describe(name) for name, option in declared.items()) or "no options"


def defaults(declared: Mapping[str, Option]) -> Dict[str, object]:
    return {name: option.default for name, option in declared.items()}


def split_list(given: Union[None, str, Sequence[str]]) -> list:
    """Items of 'a, b; c' text or of a list, blanks dropped."""
    if given is None:
        return []
    if not isinstance(given, (str, Sequence)):
        raise StfError(f"expected text such as 'a, b' or a list of items; got {given!r}")
    items = given.replace(";", ",").split(",") if isinstance(given, str) else list(given)
    return [str(item).strip() for item in items if str(item).strip()]


def split_items(given: Given) -> Dict[str, object]:
    """'k=v' items (text separated by commas or semicolons, or a list) or a mapping → {key: raw value}."""
    if given is None:
        return {}
    if isinstance(given, Mapping):
        return dict(given)
    raw: Dict[str, object] = {}
    for item in split_list(given):
        key, sep, value = (part.strip() for part in str(item).partition("="))
        if not sep or not key or not value:
            raise StfError(f"options are key=value pairs, got '{str(item).strip()}'")
        if key in raw:
            raise StfError(f"option '{key}' is given twice ({key}={raw[key]}, {key}={value}); give it once")
        raw[key] = value
    return raw


def parse(declared: Mapping[str, Option], given: Given, owner: str) -> Dict[str, object]:
    """Typed values of the given options (defaults not filled in); StfError names the valid options."""
    parsed: Dict[str, object] = {}
    for key, value in split_items(given).items():
        if key not in declared:
            raise StfError(f"unknown option '{key}' for {owner}; valid options: {describe_all(declared)}")
        try:
            parsed[key] = declared[key].convert(value)
        except (TypeError, ValueError) as exc:
            raise StfError(
                f"option {key}={value} for {owner}: {exc}; valid options: {describe_all(declared)}"
            ) from None
    return parsed


def check_whole(value: object, name: str, minimum: int, optional: bool = False) -> None:
    """Refuse a request's count or size unless it is an int (not a bool, text or 1.5) ≥ minimum; None passes when
    `optional`. `name` is its flag, e.g. '--tile' or '--steps (steps_per_epoch)', so every front end can say it."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise StfError(f"{name} must be at least {minimum}, a whole number; got {_given(value)}")


def check_real(value: object, name: str, above: float = 0.0, below: float = math.inf, optional: bool = False) -> None:
    """Refuse a request's real number unless it is finite and strictly between `above` and `below` (NaN and infinity
    are no size, rate or duration); None passes when `optional`."""
    if optional and value is None:
        return
    if not (finite_number(value) and above < value < below):
        bounds = (f"> {_number(above)}" if below == math.inf
                  else f"between {_number(above)} and {_number(below)} (exclusive)")
        raise StfError(f"{name} must be a finite number {bounds}; got {_given(value)}")


def finite_number(value: object) -> bool:
    """Whether a request's value is a real number (not a bool or text) that is neither NaN nor infinite."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _given(value: object) -> str:
    """A refused value as the user gave it: text quoted, anything else as Python prints it (2.0 is not 2)."""
    return repr(value) if isinstance(value, str) else str(value)


def parse_number(text: str, what: str) -> float:
    """A number, or a fraction such as 500/30 (as text)."""
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        return float(text)
    numerator, sep, denominator = str(text).partition("/")
    try:
        value = float(numerator) / float(denominator) if sep else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise StfError(f"{what}: expected a number or a fraction such as 500/30, got '{text}'") from None
    return value
