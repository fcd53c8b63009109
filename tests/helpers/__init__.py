"""Helpers the tests share (paths to the bundled data, reading module imports)."""
