"""``python -m benchmarks``: run every workload and write the results (see ``benchmarks/run.py``)."""

from benchmarks.run import main

raise SystemExit(main())
