"""Side-by-side benchmarks of eventcore-lab and the ``eventsourcing`` library, with hardware baselines.

Run ``python -m benchmarks`` from the repository root (``--quick`` for a seconds-long smoke run); see
``benchmarks/README.md`` for the workloads, the targets and the latest table.
"""
