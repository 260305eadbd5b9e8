"""convert/: split reading and quantization checks (fast), and a whole conversion of a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.quantize import QuantizationError, anchor_full_range, check_io_quantization
from convert.samples import hash_split, stratified_pick
from convert.training_output import TrainingOutputError, read_split_file, read_training_output
from edge.datasets import FaceSample
from edge.model_metadata import LABELS, load_metadata
from edge.preprocess import PreprocessSpec


def _detail(dtype, scale, zero_point):
    return {"dtype": dtype, "quantization": (scale, zero_point)}


def test_io_check_accepts_uint8_pixels_and_probabilities():
    check_io_quantization(_detail(np.uint8, 1.0, 0), _detail(np.uint8, 1 / 256, 0))


@pytest.mark.parametrize(
    ("input_detail", "output_detail", "message"),
    [
        (_detail(np.uint8, 0.9372549, 0), _detail(np.uint8, 1 / 256, 0), "input .*scale=1.0"),
        (_detail(np.int8, 1.0, -128), _detail(np.uint8, 1 / 256, 0), "input is int8"),
        (_detail(np.uint8, 1.0, 0), _detail(np.int8, 1 / 256, -128), "output is int8"),
        (_detail(np.uint8, 1.0, 0), _detail(np.uint8, 0.1, 0), "softmax"),
    ],
)
def test_io_check_rejects_other_quantization(input_detail, output_detail, message):
    with pytest.raises(QuantizationError, match=message):
        check_io_quantization(input_detail, output_detail)


def test_anchor_full_range_only_when_needed():
    full = np.zeros((2, 4, 4, 3), np.uint8)
    full[1, 0, 0, 0] = 255
    assert anchor_full_range(full) is full
    narrow = np.full((2, 4, 4, 3), 100, np.uint8)
    narrow[0, 1] = 150
    anchored = anchor_full_range(narrow)
    assert (anchored.min(), anchored.max()) == (0, 255)
    assert np.array_equal(anchored[1], narrow[1])  # only the first crop changes
    assert narrow.max() == 150  # the caller's array is untouched


def test_split_files_in_every_accepted_shape(tmp_path):
    records = [
        {"image": "faces2/with_mask/a.jpg", "label": "with_mask", "box": None},
        {"image": "scenes/images/s.jpg", "label": "no_mask", "box": [1, 2, 30, 40]},
        {"image": "faces2/without_mask/b.jpg", "label": "without_mask", "placement": "chin"},  # synthesized
    ]
    expected = [
        FaceSample(tmp_path / "faces2/with_mask/a.jpg", "with_mask"),
        FaceSample(tmp_path / "scenes/images/s.jpg", "without_mask", (1.0, 2.0, 30.0, 40.0)),
    ]
    (tmp_path / "list.json").write_text(json.dumps(records))
    (tmp_path / "both.json").write_text(json.dumps({"train": [], "validation": records}))
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (tmp_path / "table.csv").write_text(
        "image,label,x1,y1,x2,y2,placement\nfaces2/with_mask/a.jpg,with_mask,,,,,\n"
        "scenes/images/s.jpg,no_mask,1,2,30,40,\nfaces2/without_mask/b.jpg,without_mask,,,,,chin\n"
    )
    assert read_split_file(tmp_path / "list.json", tmp_path) == expected
    assert read_split_file(tmp_path / "both.json", tmp_path, part="val") == expected
    assert read_split_file(tmp_path / "both.json", tmp_path, part="train") == []
    assert read_split_file(tmp_path / "lines.jsonl", tmp_path) == expected
    assert read_split_file(tmp_path / "table.csv", tmp_path) == expected


def test_split_record_with_unknown_label_is_an_error(tmp_path):
    (tmp_path / "val.json").write_text(json.dumps([{"image": "x.jpg", "label": "hat"}]))
    with pytest.raises(TrainingOutputError, match="known label"):
        read_split_file(tmp_path / "val.json", tmp_path)


def test_training_output_needs_its_summary(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(TrainingOutputError, match="training_summary.json"):
        read_training_output(tmp_path / "model.keras", tmp_path)
    (tmp_path / "training_summary.json").write_text(json.dumps({"labels": list(LABELS)}))
    with pytest.raises(TrainingOutputError, match="preprocess"):
        read_training_output(tmp_path / "model.keras", tmp_path)


def test_training_output_finds_separate_split_files(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    spec = PreprocessSpec(input_size=96, crop_margin=0.25).to_dict()
    summary = {"labels": list(LABELS), "preprocess": spec}
    (tmp_path / "training_summary.json").write_text(json.dumps(summary))
    (tmp_path / "train_faces.json").write_text(json.dumps([{"image": "a.jpg", "label": "mask"}]))
    (tmp_path / "val_faces.json").write_text(json.dumps([{"image": "b.jpg", "label": "incorrect"}]))
    run = read_training_output(tmp_path / "model.keras", Path("/data"))
    assert (run.spec.input_size, run.spec.crop_margin) == (96, 0.25)
    assert run.train_samples == [FaceSample(Path("/data/a.jpg"), "with_mask")]
    assert run.val_samples == [FaceSample(Path("/data/b.jpg"), "mask_weared_incorrect")]


def test_hash_split_keeps_scenes_whole_and_is_stable():
    samples = [FaceSample(Path(f"img{i // 3}.jpg"), "with_mask", (0, 0, 10, 10 + i)) for i in range(300)]
    train, val = hash_split(samples)
    assert {s.image for s in train}.isdisjoint({s.image for s in val})
    assert 0.1 < len(val) / len(samples) < 0.3
    assert hash_split(samples) == (train, val)


def test_stratified_pick_balances_labels():
    samples = [FaceSample(Path(f"m{i}.jpg"), "with_mask") for i in range(500)]
    samples += [FaceSample(Path(f"n{i}.jpg"), "without_mask") for i in range(500)]
    samples += [FaceSample(Path(f"i{i}.jpg"), "mask_weared_incorrect") for i in range(40)]
    picked = stratified_pick(samples, 300, seed=1)
    counts = {label: sum(s.label == label for s in picked) for label in LABELS}
    assert counts == {"with_mask": 130, "without_mask": 130, "mask_weared_incorrect": 40}
    assert picked == stratified_pick(samples, 300, seed=1)


# --- a whole conversion ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def color_run(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from tests.color_model import write_training_run

    root = tmp_path_factory.mktemp("convert")
    return write_training_run(root / "run", root / "data"), root


@pytest.mark.slow
@pytest.mark.workstation
def test_conversion_parity_and_sidecar_round_trip(color_run, capsys):
    from convert.cli import main
    from edge.classifier import MaskClassifier
    from tests.color_model import color_image

    keras_model, root = color_run
    out = root / "models"
    assert main(["--keras-model", str(keras_model), "--data", str(root / "data"), "--out", str(out)]) == 0
    assert "top-1 agreement 1.0000" in capsys.readouterr().out

    model = out / "mask_classifier.tflite"
    meta = load_metadata(model)  # checks the sha256 names this exact file
    assert meta.labels == list(LABELS)
    assert (meta.input.dtype, meta.input.scale, meta.input.zero_point) == ("uint8", 1.0, 0)
    assert (meta.output.dtype, meta.output.scale, meta.output.zero_point) == ("uint8", 1 / 256, 0)
    assert meta.preprocess.input_size == 24
    assert meta.training["conversion"]["calibration_crops"] == 312
    assert meta.training["conversion"]["agreement"] == 1.0
    assert meta.training["conversion"]["logit_offsets"] == {}  # none asked for: the network as trained

    parity = json.loads((out / "mask_classifier_parity.json").read_text())
    assert parity["n"] == 78
    assert parity["agreement"] == parity["agreement_ge32"] == 1.0
    assert set(parity["agreement_by_class"]) == set(LABELS)
    assert parity["int8"]["accuracy"] == parity["float"]["accuracy"] == 1.0
    assert parity["int8"]["by_size"]["32-63"]["n"] > 0

    classifier = MaskClassifier(model, threads=1)
    frame = color_image("mask_weared_incorrect", 80, 80, seed=7)
    assert classifier.classify(frame, [(10, 10, 70, 70)])[0].label == "mask_weared_incorrect"


@pytest.mark.slow
@pytest.mark.workstation
def test_conversion_below_the_agreement_floor_installs_nothing(color_run, capsys):
    from convert.cli import main

    keras_model, root = color_run
    out = root / "refused"
    code = main(
        [
            "--keras-model",
            str(keras_model),
            "--data",
            str(root / "data"),
            "--out",
            str(out),
            "--min-agreement",
            "1.01",
        ]
    )
    assert code == 1
    assert "agreement 1.0 is below 1.01" in capsys.readouterr().err
    assert not (out / "mask_classifier.tflite").exists()
    assert (out / "mask_classifier_parity.json").is_file()  # the report is kept to read why


def test_saved_crops_are_read_and_checked_against_the_spec(tmp_path):
    from convert.crop_sets import CropSetError, load_npz
    from edge.preprocess import PreprocessSpec

    crops = np.zeros((3, 24, 24, 3), np.uint8)
    np.savez(tmp_path / "v.npz", crops=crops, labels=np.array([2, 0, 1]), face_px=np.array([20, 64, 300]),
             is_real=np.array([True, False, True]))  # fmt: skip
    loaded = load_npz(tmp_path / "v.npz", LABELS, PreprocessSpec(input_size=24))
    assert loaded.labels == ["mask_weared_incorrect", "with_mask", "without_mask"]
    assert loaded.face_px == [20, 64, 300]
    real = loaded.subset(np.flatnonzero(loaded.is_real))
    assert real.labels == ["mask_weared_incorrect", "without_mask"] and real.crops.shape == (2, 24, 24, 3)
    with pytest.raises(CropSetError, match="96"):
        load_npz(tmp_path / "v.npz", LABELS, PreprocessSpec(input_size=96))


def test_parity_report_by_hand():
    from convert.parity import parity_report

    float_probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    int8_probs = np.array([[0.88, 0.06, 0.06], [0.52, 0.4, 0.08], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    truth = ["with_mask", "without_mask", "mask_weared_incorrect", "without_mask"]
    report = parity_report(truth, float_probs, int8_probs, [20, 40, 80, 200], list(LABELS))
    assert report["agreement"] == 0.75  # the second face flips
    assert report["agreement_ge32"] == pytest.approx(2 / 3)
    assert report["agreement_by_class"]["without_mask"] == {"n": 2, "agreement": 0.5}
    assert report["agreement_by_size"]["32-63"] == {"n": 1, "agreement": 0.0}
    assert report["max_abs_probability_diff"] == pytest.approx(0.12)
    assert report["float"]["accuracy"] == 0.75 and report["int8"]["accuracy"] == 0.5


# --- bias correction ------------------------------------------------------------------------------


class _FakeConv:
    def __init__(self, kernel):
        self.kernel = kernel


class _FakeBatchNorm:
    epsilon = 1e-3

    def __init__(self, channels, rng):
        self.weights = [rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels), rng.normal(0, 1, channels),
                        rng.uniform(0.01, 1, channels)]  # fmt: skip

    def get_weights(self):
        return self.weights


def _fold_and_quantize_by_hand(kernel, batch_norm, output_axis_size, depthwise):
    """The folded float kernel and its int8 twin, written out without the module's helpers.

    Batch norm folds as gamma / sqrt(variance + epsilon) per output channel; TFLite quantizes each output
    channel symmetrically with step max|w| / 127.
    """
    gamma, _, _, variance = batch_norm.get_weights()
    factor = gamma / np.sqrt(variance + batch_norm.epsilon)
    folded = kernel.copy()
    quantized = np.empty_like(kernel)
    for c in range(output_axis_size):
        index = (slice(None), slice(None), c, 0) if depthwise else (slice(None), slice(None), slice(None), c)
        folded[index] = kernel[index] * factor[c]
        step = np.abs(folded[index]).max() / 127
        quantized[index] = np.round(folded[index] / step) * step
    return folded, quantized


def test_bias_correction_cancels_the_mean_shift_of_int8_weights():
    from convert.bias_correction import ConvBatchNorm, expected_shift, folded_kernel

    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 1, (1, 1, 16, 8))
    kernel[0, 0, 0, :] *= 20  # one large weight per output channel coarsens the step of the others
    batch_norm = _FakeBatchNorm(8, rng)
    pair = ConvBatchNorm(_FakeConv(kernel), batch_norm, depthwise=False)
    folded, quantized = _fold_and_quantize_by_hand(kernel, batch_norm, 8, depthwise=False)
    assert np.allclose(folded_kernel(pair), folded)
    x = rng.uniform(0, 6, (5000, 16))  # post-ReLU6 activations: positive means, so errors do not cancel
    drift = (x @ quantized[0, 0]).mean(0) - (x @ folded[0, 0]).mean(0)
    assert np.abs(drift).max() > 1e-3  # there is a shift to correct
    assert np.allclose(expected_shift(pair, x.mean(0)), drift)


def test_bias_correction_for_depthwise_kernels():
    from convert.bias_correction import ConvBatchNorm, expected_shift

    rng = np.random.default_rng(1)
    kernel = rng.normal(0, 1, (3, 3, 4, 1))
    batch_norm = _FakeBatchNorm(4, rng)
    pair = ConvBatchNorm(_FakeConv(kernel), batch_norm, depthwise=True)
    folded, quantized = _fold_and_quantize_by_hand(kernel, batch_norm, 4, depthwise=True)
    means = np.array([0.5, 1.0, 2.0, 3.0])
    # a constant image: each channel's 3x3 window sees its mean at every tap, so a depthwise output is
    # the channel mean times the sum of that channel's kernel
    drift = np.array([(quantized[:, :, c, 0].sum() - folded[:, :, c, 0].sum()) * means[c] for c in range(4)])
    assert np.abs(drift).max() > 1e-4
    assert np.allclose(expected_shift(pair, means), drift)


@pytest.mark.slow
@pytest.mark.workstation
def test_correct_biases_changes_only_betas_of_a_copy():
    keras = pytest.importorskip("keras")
    from convert.bias_correction import correct_biases

    inner_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="c1")(inner_in)
    x = keras.layers.BatchNormalization(name="c1_BN")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="d1")(x)
    x = keras.layers.BatchNormalization(name="d1_BN")(x)
    base = keras.Model(inner_in, x, name="base")
    outer_in = keras.Input((8, 8, 3))
    y = keras.layers.Rescaling(1 / 127.5, offset=-1)(outer_in)
    y = keras.layers.GlobalAveragePooling2D()(base(y))
    model = keras.Model(outer_in, keras.layers.Dense(3, activation="softmax")(y))
    rng = np.random.default_rng(0)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [rng.uniform(0.5, 2, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6), rng.uniform(0.1, 1, 6)]
            )
    crops = rng.integers(0, 256, (40, 8, 8, 3)).astype(np.uint8)
    before = [w.copy() for w in model.get_weights()]

    corrected = correct_biases(model, crops, batch_size=16)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))  # untouched
    changed = [
        layer.name
        for layer, original in zip(corrected.get_layer("base").layers, base.layers, strict=True)
        for new, old in zip(layer.get_weights(), original.get_weights(), strict=True)
        if not np.array_equal(new, old)
    ]
    assert sorted(set(changed)) == ["c1_BN", "d1_BN"]
    c1, c1_new = (
        base.get_layer("c1_BN").get_weights(),
        corrected.get_layer("base").get_layer("c1_BN").get_weights(),
    )
    assert np.array_equal(c1[0], c1_new[0]) and not np.array_equal(c1[1], c1_new[1])  # gamma kept, beta moved


# --- logit offsets ---------------------------------------------------------------------------------


def test_logit_offsets_are_parsed_by_label_and_bad_ones_are_named():
    from convert.logit_offsets import LogitOffsetError, parse_offsets

    assert parse_offsets(["mask_weared_incorrect=-1", "with_mask=0.5"], LABELS) == {
        "mask_weared_incorrect": -1.0,
        "with_mask": 0.5,
    }
    for bad, named in (
        ("incorrect=-1", "'incorrect'"),
        ("mask_weared_incorrect", "LABEL=VALUE"),
        ("with_mask=x", "'x'"),
    ):
        with pytest.raises(LogitOffsetError, match=named):
            parse_offsets([bad], LABELS)


@pytest.mark.workstation
def test_a_logit_offset_shifts_the_softmax_layer_and_only_that_class():
    keras = pytest.importorskip("keras")
    from convert.logit_offsets import LogitOffsetError, apply_logit_offsets

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(inputs))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    before = model.predict(x, verbose=0)
    apply_logit_offsets(model, {"mask_weared_incorrect": -1.0}, LABELS)
    after = model.predict(x, verbose=0)
    # softmax(z + b e_2): the worn-wrong odds against each other class fall by exactly e^-1
    np.testing.assert_allclose(after[:, 2] / after[:, 0], before[:, 2] / before[:, 0] * np.exp(-1), rtol=1e-4)
    np.testing.assert_allclose(after[:, 1] / after[:, 0], before[:, 1] / before[:, 0], rtol=1e-4)
    assert (after.argmax(1) == 2).sum() < (before.argmax(1) == 2).sum()

    plain = keras.Model(inputs, keras.layers.Dense(3, name="logits")(inputs))
    with pytest.raises(LogitOffsetError, match="softmax"):
        apply_logit_offsets(plain, {"with_mask": 1.0}, LABELS)


@pytest.mark.workstation
def test_the_int8_report_compares_with_the_float_model_plus_the_conversion_offsets():
    from train.int8_report import offset_top1

    float_probs = np.array([[0.40, 0.20, 0.40 + 1e-3], [0.1, 0.1, 0.8]])
    assert offset_top1(float_probs, {}, LABELS).tolist() == [2, 2]
    assert offset_top1(float_probs, {"mask_weared_incorrect": -1.0}, LABELS).tolist() == [0, 2]
