"""Timing scripts, one per hot step; run from the repository root as
``python -m benchmarks.<name>`` (``make bench`` runs every ``bench_*``).

Also the shared simulators: :mod:`benchmarks.simulate` (real names, simulated features) and
:mod:`benchmarks.reference` (plain-loop references of the original), which the tests use too.
"""
