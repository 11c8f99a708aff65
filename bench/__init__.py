"""Rapport's benchmarks: `python -m bench` (see docs/performance.md). Not tests."""
