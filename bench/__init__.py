"""Benchmarks (not tests): `python -m bench` runs every bench_*.py and prints one table."""
