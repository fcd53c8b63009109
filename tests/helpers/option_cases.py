"""Bad method options and the one line every front end must answer with (the engine's `parse_options`)."""

BAD_OPTIONS = [
    ("starfm", "windw=15", "unknown option 'windw' for method 'starfm'; valid options: window=31 (integer 1..255)"),
    ("starfm", "window=-3", "option window=-3 for method 'starfm': out of range; valid options: window=31"),
    ("delta", "window=15", "unknown option 'window' for method 'delta'; valid options: residual=false (true/false)"),
]
"""(method, option text, what the error line says)."""
