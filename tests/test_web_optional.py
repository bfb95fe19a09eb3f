"""The core works without any web framework installed, and the web package says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Blocks the web stack at import time, as if it were not installed, then uses the core.
SCRIPT = """
import sys
for name in ("fastapi", "starlette", "uvicorn", "jwt", "httpx", "pydantic"):
    sys.modules[name] = None  # an import of these now raises ImportError
import eventcore_lab
from eventcore_lab import Executor, MemoryStore
from eventcore_lab.examples.tasks import CreateTask
from eventcore_lab.projections import ProjectionRunner
import eventcore_lab.stores, eventcore_lab.simulation, eventcore_lab.testing
store = MemoryStore()
result = Executor(store).execute(CreateTask.new("1", "title", "text", "ann"))
assert len(result.events_written) == 1 and store.head() == 1
loaded = [m for m in sys.modules if m.split(".")[0] in ("fastapi", "starlette", "uvicorn", "jwt")
          and sys.modules[m] is not None]
assert not loaded, loaded
try:
    import eventcore_lab.web
except ImportError as exc:
    print("IMPORT-ERROR:", exc)
"""


def test_core_imports_and_runs_without_the_web_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "IMPORT-ERROR: eventcore_lab.web needs the 'web' extra" in done.stdout
    assert "pip install 'eventcore-lab[web]'" in done.stdout
