"""The input-size sweep: `python -m train.sweep --sizes 96 128 160 224`.

Accuracy grows with the crop size and so does latency, roughly with its square; the alarm has to keep
up with several faces per frame on a Pi and lives on faces of 32-100 px. Every size gets the same short
schedule (the CPU budget of one session does not allow the full one four times, and a short schedule
ranks sizes fairly), the same data, split and seed. Each run folder is then converted to int8 with
`python -m convert` and timed; `sweep.json` and `sweep.md` collect accuracy against latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

from train.__main__ import build_parser as train_parser
from train.__main__ import options_from_args
from train.run import train_model

log = logging.getLogger(__name__)

SHORT_SCHEDULE = ["--head-epochs", "2", "--finetune-epochs", "4"]


def train_sizes(sizes: list[int], root: Path, data: Path, extra: list[str]) -> None:
    for size in sizes:
        out = root / f"s{size}"
        if (out / "training_summary.json").is_file():
            log.info("size %d already trained in %s", size, out)
            continue
        argv = ["--data", str(data), "--out", str(out), "--input-size", str(size), *SHORT_SCHEDULE, *extra]
        log.info("sweep: training %d px", size)
        train_model(options_from_args(train_parser().parse_args(argv)))


def convert_size(out: Path, data: Path) -> dict | None:
    """`python -m convert` into <run>/int8/; the parity report, or None when conversion failed."""
    target = out / "int8"
    command = [
        sys.executable,
        "-m",
        "convert",
        "--keras-model",
        str(out / "model.keras"),
        "--out",
        str(target),
        "--data",
        str(data),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        log.error("conversion of %s failed:\n%s", out, result.stderr[-2000:])
        return None
    return json.loads((target / "mask_classifier_parity.json").read_text())


def latency_ms(model: Path, threads: int = 2) -> float | None:
    """Median int8 ms per face, batch 1, from bench/classifier_latency.py (--json); None if it is missing."""
    script = Path("bench/classifier_latency.py")
    if not script.is_file():
        return None
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--model",
            str(model),
            "--threads",
            str(threads),
            "--batches",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log.error("latency bench failed:\n%s", result.stderr[-2000:])
        return None
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["ms_per_face"]


def collect(sizes: list[int], root: Path, data: Path, convert: bool) -> list[dict]:
    rows = []
    for size in sizes:
        out = root / f"s{size}"
        summary = json.loads((out / "training_summary.json").read_text())
        row = {"input_size": size, **summary["headline"], "fit_s": summary["timings"]["fit_s"]}
        if convert:
            parity = convert_size(out, data)
            model = out / "int8" / "mask_classifier.tflite"
            row["int8_agreement"] = parity and parity["agreement"]
            row["int8_accuracy_real_val"] = parity and parity["int8"]["accuracy"]
            row["int8_bytes"] = model.stat().st_size if model.is_file() else None
            row["int8_ms_per_face_2_threads"] = latency_ms(model) if model.is_file() else None
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(value, digits=4):
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = [
        "| input px | macro-F1 >=32 px | 2-class acc >=32 px | worn-wrong real >=32 P / R (n) | int8 agreement | int8 ms/face (2 thr) | int8 MB | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        inc = r["incorrect_real_ge32"]
        size_mb = None if r.get("int8_bytes") is None else r["int8_bytes"] / 1e6
        lines.append(
            f"| {r['input_size']} | {cell(r['macro_f1_ge32'])} | {cell(r['two_class_accuracy_ge32'])} | "
            f"{cell(inc['precision'], 2)} / {cell(inc['recall'], 2)} ({inc['support']}) | {cell(r.get('int8_agreement'))} | "
            f"{cell(r.get('int8_ms_per_face_2_threads'), 2)} | {cell(size_mb, 2)} | {cell(r['fit_s'], 0)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 160, 224])
    parser.add_argument("--root", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--skip-training", action="store_true", help="only convert, time and tabulate")
    parser.add_argument("--no-convert", action="store_true", help="train and tabulate float metrics only")
    parser.add_argument(
        "--train-args", default="", help="extra `python -m train` options, e.g. '--real-incorrect-weight 1'"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    if not args.skip_training:
        train_sizes(args.sizes, args.root, args.data, shlex.split(args.train_args))
    rows = collect(args.sizes, args.root, args.data, convert=not args.no_convert)
    (args.root / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.root / "sweep.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
