"""Benchmark: the runner (encoders x tasks x layers x seeds, plus peers) and the report."""
