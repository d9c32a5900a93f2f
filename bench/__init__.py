"""Benchmarks of the info-request service (issue #6): `make bench`, figures in docs/benchmarks.md.

Parts, each a module with an async `run(...)`:
- bench.throughput: end-to-end requests/s of InfoRequestWorkflow against two baselines with
  empty steps (bench.baselines), interleaved in one process; reply-to-closed latency.
- bench.actions: history events and Temporal Cloud actions per request (reply and deadline path).
- bench.scale: many requests open at once against a worker process; RSS, start and drain times.
- bench.profile: worker CPU per request with the worker in its own process, where it goes
  (py-spy, when installed), and the worker settings of bench.scale interleaved.
"""
