"""Example domains used by the tutorials, notebooks, tests and benchmarks."""
