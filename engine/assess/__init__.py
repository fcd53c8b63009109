"""Assessment: error maps and measures of a fused image."""
