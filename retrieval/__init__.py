"""Question → ranked, quotable hits."""
