"""Development kit shared by the tests and the bench: synthetic scenes and memory probes (not shipped)."""
