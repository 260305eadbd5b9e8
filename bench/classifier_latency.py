"""Classifier latency per face: batch 1 and batch 6, 1 and 2 threads, batched invoke vs one by one.

    python bench/classifier_latency.py [--model models/mask_classifier.tflite] [--json]

The target is <= 2 ms per face with 2 threads on a 2-core x86 machine. It runs the edge's own
BatchInvoker (the code MaskClassifier uses), so the figures are what the daemon pays, and it needs no
metadata sidecar: the training input-size sweep can time any converted .tflite. Inputs are random uint8
crops; an int8 network's speed does not depend on pixel values. Medians over --repeats calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.classifier import BatchInvoker  # noqa: E402
from edge.paths import classifier_model_path  # noqa: E402


def time_per_face(invokers: dict[str, BatchInvoker], batch: int, repeats: int) -> dict[str, float]:
    """Median milliseconds per face of each invoker's `run` on `batch` crops.

    The invokers take turns call by call, so a load change on a shared machine hits them alike.
    """
    first = next(iter(invokers.values()))
    shape = [batch, *(int(v) for v in first.input_detail["shape"][1:])]
    crops = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    samples: dict[str, list[float]] = {name: [] for name in invokers}
    for repeat in range(repeats + 10):  # the first 10 are warm-up: weight packing, allocation
        for name, invoker in invokers.items():
            started = time.perf_counter()
            invoker.run(crops)
            if repeat >= 10:
                samples[name].append(time.perf_counter() - started)
    return {name: float(np.median(times)) * 1000.0 / batch for name, times in samples.items()}


def measure(model: Path, threads: list[int], batches: list[int], repeats: int) -> list[dict]:
    rows = []
    for thread_count in threads:
        batched = BatchInvoker(model, threads=thread_count, batching=True)
        one_by_one = BatchInvoker(model, threads=thread_count, batching=False)
        for batch in batches:
            invokers = {"single": batched} if batch == 1 else {"batched": batched, "one by one": one_by_one}
            for strategy, ms in time_per_face(invokers, batch, repeats).items():
                rows.append(
                    {
                        "threads": thread_count,
                        "batch": batch,
                        "strategy": strategy,
                        "ms_per_face": round(ms, 4),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=classifier_model_path(), help="a classifier .tflite")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="one JSON object (for the input-size sweep)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model {args.model} not found (python -m convert builds it)", file=sys.stderr)
        return 2
    size = int(BatchInvoker(args.model, threads=1).input_detail["shape"][1])
    rows = measure(args.model, args.threads, args.batches, args.repeats)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}"
    single = [r for r in rows if r["batch"] == 1 and r["threads"] == args.threads[-1]]
    result = {"model": str(args.model), "bytes": args.model.stat().st_size, "input_size": size,
              "machine": machine, "rows": rows,
              # the headline for scripts (the input-size sweep): one face, the last --threads given
              "ms_per_face": single[0]["ms_per_face"] if single else None}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.model} ({result['bytes'] / 1e6:.2f} MB, {size} px input) on {machine}")
    print(f"{'threads':>7} {'batch':>5}  {'strategy':<11} {'ms/face':>8}")
    for row in rows:
        print(f"{row['threads']:>7} {row['batch']:>5}  {row['strategy']:<11} {row['ms_per_face']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
