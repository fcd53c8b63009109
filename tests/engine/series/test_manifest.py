"""series.json is written whole or not at all: its partial file goes on every exit, an interrupt included."""
from __future__ import annotations

import os

import pytest

from stf_engine.series import manifest
from stf_engine.series.request import DateResult


def test_an_interrupted_manifest_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(manifest.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        manifest.write_manifest(str(tmp_path), [DateResult("2021-01-01", "fused")], {})
    assert os.listdir(tmp_path) == []
