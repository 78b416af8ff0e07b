"""Timing scripts, one per hot step; run from the repository root as
``python -m benchmarks.<name>`` (``make bench`` runs every ``bench_*``)."""
