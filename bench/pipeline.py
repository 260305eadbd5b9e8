"""The README's figures: the daemon's loop at 640x480 with 1 and 6 faces, 1 and 2 threads, peak RSS over
1000 frames in a fresh process, and the time from starting `maskwatch run` to its first result.

    python bench/pipeline.py [--frames 1000] [--json]

It is `maskwatch bench --rss --first-result --worst-case` with the README's settings, so a Pi owner and the README
measure the same thing. Close other programs first: on two cores a busy neighbour doubles every figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.commands import bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(parser)
    parser.set_defaults(frames=1000, rss=True, first_result=True, worst_case=True)
    return bench.handle(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
