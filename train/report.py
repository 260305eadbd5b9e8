"""What a training run writes about its model: metrics by class, face size and source, and plots.

All numbers come from edge/scoring.py, the same code convert/ and `maskwatch evaluate` use, on the
contract crops of the validation split. Besides the whole split there are the slices the targets
speak of: faces >= 32 px (the alarm ignores smaller ones), real faces only (no drawn or MaskedFace-Net
mask), and with_mask vs without_mask as two classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge.model_metadata import LABELS  # noqa: E402
from edge.scoring import classification_report  # noqa: E402
from train.data import FaceRecord  # noqa: E402

MIN_ALARM_PX = 32


def slice_reports(records: list[FaceRecord], predicted: np.ndarray) -> dict[str, dict]:
    """Classification reports for the named slices of the validation split (see the module doc)."""
    truth = np.array([r.label for r in records])
    guess = np.array([LABELS[i] for i in predicted])
    face_px = np.array([r.face_px for r in records])
    real = np.array([r.is_real for r in records])
    big = face_px >= MIN_ALARM_PX
    two = np.isin(truth, ["with_mask", "without_mask"])
    slices = {
        "all": np.ones(len(records), bool),
        "ge32": big,
        "real": real,
        "real_ge32": real & big,
        "synthetic": ~real,
    }
    reports = {}
    for name, keep in slices.items():
        idx = np.flatnonzero(keep)
        reports[name] = classification_report(
            truth[idx].tolist(), guess[idx].tolist(), LABELS, face_px[idx].tolist()
        )
    # with_mask vs without_mask: faces of those two classes only, a worn-wrong guess counts as not masked
    for name, keep in (("two_class_ge32", two & big), ("two_class_real_ge32", two & big & real)):
        idx = np.flatnonzero(keep)
        reports[name] = classification_report(
            truth[idx].tolist(), guess[idx].tolist(), LABELS, face_px[idx].tolist(), two_class=True
        )
    sources = sorted({r.source for r in records})
    reports["by_source"] = {
        source: classification_report(truth[idx].tolist(), guess[idx].tolist(), LABELS, face_px[idx].tolist())
        for source in sources
        for idx in [np.flatnonzero([r.source == source for r in records])]
    }
    return reports


def headline(reports: dict[str, dict]) -> dict:
    """The numbers the targets name, in one flat dict (None where a slice is empty)."""
    incorrect = reports["real_ge32"]["per_class"]["mask_weared_incorrect"]
    incorrect_all = reports["real"]["per_class"]["mask_weared_incorrect"]
    return {
        "macro_f1_ge32": reports["ge32"]["macro_f1"],
        "accuracy_ge32": reports["ge32"]["accuracy"],
        "two_class_accuracy_ge32": reports["two_class_ge32"]["accuracy"],
        "two_class_accuracy_real_ge32": reports["two_class_real_ge32"]["accuracy"],
        "incorrect_real_ge32": {k: incorrect[k] for k in ("precision", "recall", "support")},
        "incorrect_real_all_sizes": {k: incorrect_all[k] for k in ("precision", "recall", "support")},
        "macro_f1_all": reports["all"]["macro_f1"],
        "accuracy_all": reports["all"]["accuracy"],
    }


def text_report(reports: dict[str, dict]) -> str:
    """A readable classification report: per class and by size, for each slice."""
    lines = []
    for name in ("all", "ge32", "real", "real_ge32", "synthetic", "two_class_ge32", "two_class_real_ge32"):
        report = reports[name]
        lines.append(
            f"== {name}: n={report['n']} accuracy={_fmt(report['accuracy'])} macro_f1={_fmt(report['macro_f1'])}"
        )
        for label, m in report["per_class"].items():
            lines.append(
                f"   {label:24s} P={_fmt(m['precision'])} R={_fmt(m['recall'])} F1={_fmt(m['f1'])} n={m['support']}"
            )
        for bucket, sub in report.get("by_size", {}).items():
            lines.append(
                f"   size {bucket:7s} n={sub['n']:5d} accuracy={_fmt(sub['accuracy'])} macro_f1={_fmt(sub['macro_f1'])}"
            )
        lines.append(
            f"   confusion (rows true, cols predicted, {report['confusion']['labels']}): {report['confusion']['matrix']}"
        )
    for source, report in reports["by_source"].items():
        lines.append(f"== source {source}: n={report['n']} accuracy={_fmt(report['accuracy'])}")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "  -  " if value is None else f"{value:.4f}"


def plot_confusion(report: dict, path: Path, title: str) -> None:
    matrix = np.array(report["confusion"]["matrix"])
    labels = report["confusion"]["labels"]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: dict, path: Path) -> None:
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], label=f"train {metric}")
        ax.plot(epochs, history[f"val_{metric}"], label=f"val {metric}")
        switch = history["phase"].count("head")
        if 0 < switch < len(epochs):
            ax.axvline(switch + 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(out_dir: Path, records: list[FaceRecord], probabilities: np.ndarray, history: dict) -> dict:
    """Write metrics.json, per_size_metrics.json, classification_report.txt and the PNGs; return headline."""
    reports = slice_reports(records, probabilities.argmax(axis=1))
    top = headline(reports)
    (out_dir / "metrics.json").write_text(json.dumps({"headline": top, **reports}, indent=2) + "\n")
    per_size = {name: reports[name]["by_size"] for name in ("all", "real", "synthetic")}
    (out_dir / "per_size_metrics.json").write_text(json.dumps(per_size, indent=2) + "\n")
    (out_dir / "classification_report.txt").write_text(text_report(reports))
    plot_confusion(reports["all"], out_dir / "confusion_matrix.png", "validation, all faces")
    plot_confusion(
        reports["real_ge32"], out_dir / "confusion_matrix_real_ge32.png", "validation, real faces >= 32 px"
    )
    if history.get("loss"):
        plot_curves(history, out_dir / "training_curves.png")
    return top
