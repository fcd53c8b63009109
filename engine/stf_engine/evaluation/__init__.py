"""Offline assessment of a prediction against the truth: metrics, tables and plots."""
