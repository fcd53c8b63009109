"""Method parameters typed as text ("window=15, classes=6"), checked against what the method declares."""
from __future__ import annotations

from typing import Dict


def describe_defaults(spec) -> str:
    """The method's parameters with their defaults, in the same text form (empty when it has none)."""
    return ", ".join(f"{key}={value}" for key, value in spec.options.items())


def parse_method_options(text: str, spec) -> Dict[str, str]:
    """'key=value' items separated by commas or semicolons; ValueError names a malformed or unknown key."""
    options: Dict[str, str] = {}
    for item in text.replace(";", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"method options are key=value pairs, got '{item.strip()}'")
        if key not in spec.options:
            takes = ", ".join(spec.options) or "no options"
            raise ValueError(f"unknown option '{key}' for {spec.name}; it takes {takes}")
        options[key] = value
    return options
