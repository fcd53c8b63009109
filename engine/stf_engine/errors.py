"""Exceptions the engine raises for problems a user can fix (bad input) or caused (cancel)."""


class StfError(Exception):
    """A problem with the request or its inputs, reported as one line without a traceback."""


class FusionCancelled(StfError):
    """The caller's cancel event was set; no output was written (a file already at the output path is unchanged)."""
