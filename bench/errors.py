"""The error that ends a benchmark run."""


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says why."""
