"""Benchmarks: ``make bench`` (``python -m bench``) prints throughput and latency figures."""
