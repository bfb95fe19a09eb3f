"""Regenerate the sample histories in this directory.

    python data/make_samples.py                  # both samples, shipped sizes, fixed seed
    python data/make_samples.py banking --events 5000 --out /somewhere/else

The histories come from running the example domains' commands with a seeded random generator and a
simulated clock (see ``eventcore_lab.samples``), so the same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eventcore_lab import EventCoreError
from eventcore_lab.samples import SAMPLES, SEED, write_sample


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"samples to make: {', '.join(SAMPLES)} (default: all)")
    parser.add_argument("--events", type=int, help="events per sample (default: the shipped size)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default: {SEED})")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output directory")
    args = parser.parse_args(argv)
    for name in args.names or list(SAMPLES):
        try:
            path = write_sample(name, args.out, events=args.events, seed=args.seed, progress=False)
        except EventCoreError as error:
            parser.error(str(error))
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
