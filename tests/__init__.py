"""The test suite (pytest, CPU only): ``make test`` runs it. Plain-loop references of the
original's computations live in :mod:`benchmarks.reference`, simulated inputs in
:mod:`benchmarks.simulate`: the benchmarks use both, and import nothing from here."""
