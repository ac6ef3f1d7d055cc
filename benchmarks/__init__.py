"""pktsim's benchmarks (benchmarks/README.md): ``python -m benchmarks.run`` / ``make bench``.

Every headline figure is a ratio measured side by side in one process against a reference
computed on the same input, because the machine is shared and noisy.  Benchmarks are never
timed tests: ``tests/bench/test_benchmarks_quick.py`` only checks that they still run.
"""
