"""Benchmarks for council: added SSE latency, throughput and replay speed, recorded, never asserted.

Run with ``make bench`` or ``.venv/bin/python -m bench.run [--quick]``; see ``bench/README.md``.
"""
