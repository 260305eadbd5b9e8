"""Two-phase fine-tuning on two CPU cores: the head on a frozen base, then the upper blocks at a low rate.

Batches are augmented on the fly from the cached context crops (train/augment.py) in the main process:
at ~0.5 ms a face that is a few percent of a training step, and extra worker processes would only fight
the two cores that TensorFlow needs. Class weights travel as sample weights (one mechanism for both
phases; real worn-wrong faces weigh extra). The checkpoint keeps the weights of the best validation loss over both phases; early stopping
ends a phase that stopped improving. Validation uses the contract crops only: what the model will see.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from edge.model_metadata import LABELS
from train.augment import AugmentConfig, augment_batch
from train.crops import FaceArrays
from train.distill import EnsembleTeacher, soft_targets
from train.model import build_classifier, freeze_base, unfreeze_top

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """The schedule; defaults are the full run's (the sweep shortens the epochs)."""

    input_size: int = 128
    batch_size: int = 64
    head_epochs: int = 3
    head_lr: float = 1e-3
    finetune_epochs: int = 14
    finetune_lr: float = 2e-4
    finetune_from_block: int = 10  # blocks 10..16 and the last 1x1 conv are trained in phase 2
    patience: int = 4
    label_smoothing: float = 0.05
    dropout: float = 0.3
    real_incorrect_weight: float = 3.0  # extra weight of real worn-wrong faces (~65 among ~3000 drawn ones)
    distill_weight: float = 0.5  # the teachers' share of the targets (train/distill.py)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sample_weights(faces: FaceArrays, config: FitConfig) -> np.ndarray:
    """Class weight of each face, times `real_incorrect_weight` for real worn-wrong faces.

    The worn-wrong class is mostly drawn masks and MaskedFace-Net; the few real ones (the targets are
    on real faces) would otherwise weigh as little as one drawn mask each.
    """
    labels = faces.labels
    weights = class_weights(labels)[labels]
    real_incorrect = np.array([r.is_real and r.label == "mask_weared_incorrect" for r in faces.records])
    weights[real_incorrect] *= config.real_incorrect_weight
    return weights.astype(np.float32)


def class_weights(labels: np.ndarray, n_classes: int = len(LABELS)) -> np.ndarray:
    """Inverse-frequency weights normalised to mean 1 over samples: n / (k * n_c)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented training batches: (uint8-valued float32 images, targets, sample weights).

    Targets are one-hot labels, or with a `teacher` the labels mixed with its answers on the same batch.
    """

    def __init__(
        self, faces: FaceArrays, config: FitConfig, augment: AugmentConfig, weights: np.ndarray,
        teacher: EnsembleTeacher | None = None,
    ):  # fmt: skip
        super().__init__(workers=1, use_multiprocessing=False)
        self.faces, self.config, self.augment, self.teacher = faces, config, augment, teacher
        self.labels = faces.labels
        self.sample_weights = weights
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.config.seed, self.epoch]).permutation(len(self.labels))

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.config.batch_size))

    def __getitem__(self, index: int):
        take = self.order[index * self.config.batch_size : (index + 1) * self.config.batch_size]
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        images = augment_batch(
            self.faces.context[take],
            self.faces.contract_fraction[take],
            self.config.input_size,
            rng,
            self.augment,
        )
        targets = np.eye(len(LABELS), dtype=np.float32)[self.labels[take]]
        if self.teacher is not None:
            targets = soft_targets(targets, self.teacher.probabilities(images), self.config.distill_weight)
        return images.astype(np.float32), targets, self.sample_weights[take]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


class ProgressLog(keras.callbacks.Callback):
    """One log line every `every` batches and per epoch, with elapsed time: readable in a nohup log."""

    def __init__(self, phase: str, every: int = 40):
        super().__init__()
        self.phase, self.every = phase, every
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            log.info(
                "%s batch %d loss %.4f (%.0f s)",
                self.phase,
                batch + 1,
                (logs or {}).get("loss", float("nan")),
                time.monotonic() - self.started,
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        log.info(
            "%s epoch %d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f (%.0f s)",
            self.phase, epoch + 1, logs.get("loss", np.nan), logs.get("accuracy", np.nan),
            logs.get("val_loss", np.nan), logs.get("val_accuracy", np.nan), time.monotonic() - self.started,
        )  # fmt: skip


def _compile(model: keras.Model, learning_rate: float, config: FitConfig) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        weighted_metrics=[],
    )


def fit_classifier(
    train: FaceArrays, val: FaceArrays, config: FitConfig, weights_path: Path | None, out_dir: Path,
    augment: AugmentConfig | None = None, teachers: tuple[Path, ...] = (),
) -> tuple[keras.Model, dict]:  # fmt: skip
    """Train, keep the best-val-loss weights, and return (model, history with per-epoch metrics).

    With `teachers` (trained run folders) the training targets mix in their averaged answers; validation
    stays on the labels alone, so the checkpoint's validation loss means what it means without them.
    """
    augment = augment or AugmentConfig()
    keras.utils.set_random_seed(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "best.weights.h5"
    model = build_classifier(config.input_size, weights_path, config.dropout, config.seed)
    weights = class_weights(train.labels)
    log.info("class weights %s", dict(zip(LABELS, weights.round(3).tolist(), strict=True)))
    teacher = EnsembleTeacher(list(teachers)) if teachers else None
    batches = AugmentedBatches(train, config, augment, sample_weights(train, config), teacher)
    val_data = (val.contract.astype(np.float32), np.eye(len(LABELS), dtype=np.float32)[val.labels])
    history: dict[str, list] = {"phase": []}
    best = keras.callbacks.ModelCheckpoint(
        checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True
    )
    phases = [
        ("head", config.head_epochs, config.head_lr, lambda: freeze_base(model)),
        (
            "finetune",
            config.finetune_epochs,
            config.finetune_lr,
            lambda: unfreeze_top(model, config.finetune_from_block),
        ),
    ]
    epoch = 0
    for name, epochs, learning_rate, prepare in phases:
        if epochs <= 0:
            continue
        prepare()
        _compile(model, learning_rate, config)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)
        slower = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.3, patience=max(1, config.patience // 2), min_lr=1e-6
        )
        log.info(
            "phase %s: %d epochs at lr %g, %d trainable weights",
            name,
            epochs,
            learning_rate,
            len(model.trainable_weights),
        )
        result = model.fit(
            batches, validation_data=val_data, batch_size=config.batch_size, initial_epoch=epoch,
            epochs=epoch + epochs, verbose=0, callbacks=[best, stop, slower, ProgressLog(name)],
        )  # fmt: skip
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        history["phase"].extend([name] * len(result.history["loss"]))
        epoch += len(result.history["loss"])
        # the next phase starts from the best weights so far, not from the last (maybe overfit) epoch
        with warnings.catch_warnings():  # the checkpoint holds the last phase's optimizer, unused here
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(checkpoint)
    return model, history
