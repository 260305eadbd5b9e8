"""Per-class offsets added to the classifier's logits before it is quantized.

The network is trained with inverse-frequency class weights and extra weight on the scarce real
worn-wrong faces, which shifts its priors towards `mask_weared_incorrect`. Trained with a source held
out (`python -m train --hold-out-source`, models/MODEL_CARD.md), every such model called too many
correctly masked faces from the unseen source worn-wrong, and each lost accuracy by it; a negative
offset on that class's logit won back masked-vs-unmasked accuracy on both held-out sources. Adding the
offset to the bias of the final softmax layer keeps the offset inside the model file: the edge, `maskwatch
evaluate` and the parity check all see the same probabilities, and the sidecar records the value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class LogitOffsetError(ValueError):
    """An offset names an unknown label, is malformed, or the model has no softmax layer to carry it."""


def parse_offsets(items: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """{label: offset} from `LABEL=VALUE` strings (the command line's form)."""
    offsets: dict[str, float] = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep:
            raise LogitOffsetError(f"logit offset {item!r} is not LABEL=VALUE")
        if label not in labels:
            raise LogitOffsetError(f"logit offset for {label!r}: labels are {list(labels)}")
        try:
            offsets[label] = float(value)
        except ValueError:
            raise LogitOffsetError(f"logit offset {item!r}: {value!r} is not a number") from None
    return offsets


def apply_logit_offsets(model, offsets: dict[str, float], labels: Sequence[str]) -> None:
    """Add each label's offset to the bias of the model's final softmax Dense layer, in place."""
    if not offsets:
        return
    layer = model.layers[-1]
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if not getattr(layer, "use_bias", False) or activation != "softmax":
        raise LogitOffsetError(
            f"the model's last layer {layer.name!r} is not a Dense layer with softmax and a bias"
        )
    kernel, bias = layer.get_weights()
    if bias.shape != (len(labels),):
        raise LogitOffsetError(f"the last layer has {bias.shape[0]} outputs for {len(labels)} labels")
    shift = np.array([offsets.get(label, 0.0) for label in labels], dtype=bias.dtype)
    layer.set_weights([kernel, bias + shift])
