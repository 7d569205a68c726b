"""Black-box benchmarks of the Lucid service: `python -m bench.ingest`, `python -m bench.api`,
`python -m bench.encryption`, `python -m bench.seek`, `python -m bench.costs`,
`python -m bench.sessions`."""
