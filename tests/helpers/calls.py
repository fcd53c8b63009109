"""Counting the calls of a function while a test runs."""


def count_calls(monkeypatch, owner, name: str) -> list:
    """Replace `owner.name` with a wrapper that records each call, then calls through; the growing record."""
    calls, original = [], getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls
