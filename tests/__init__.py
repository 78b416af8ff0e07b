"""The test suite (pytest, CPU only): ``make test`` runs it. Plain-loop references of the
original's computations live in :mod:`tests.reference`, simulated inputs in
:mod:`tests.simulate`; the benchmarks use both."""
