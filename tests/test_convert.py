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
    assert meta.training["conversion"]["calibration_by_label"] == dict.fromkeys(LABELS, 104)

    parity = json.loads((out / "mask_classifier_parity.json").read_text())
    assert parity["n"] == 78
    assert parity["agreement"] == parity["agreement_ge32"] == 1.0
    assert set(parity["agreement_by_class"]) == set(LABELS)
    assert parity["int8"]["accuracy"] == parity["float"]["accuracy"] == 1.0
    assert parity["int8"]["by_size"]["32-63"]["n"] > 0
    assert parity["model_sha256"] == meta.model_sha256  # the report names the model it describes

    classifier = MaskClassifier(model, threads=1)
    frame = color_image("mask_weared_incorrect", 80, 80, seed=7)
    assert classifier.classify(frame, [(10, 10, 70, 70)])[0].label == "mask_weared_incorrect"


@pytest.mark.slow
@pytest.mark.workstation
def test_conversion_below_the_agreement_floor_installs_nothing(color_run, capsys):
    from convert.cli import main

    keras_model, root = color_run
    out = root / "refused"
    out.mkdir()
    (out / "mask_classifier_parity.json").write_text("the shipped model's report\n")
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
    err = capsys.readouterr().err
    assert "agreement 1.0 is below 1.01" in err and "mask_classifier_parity.rejected.json" in err
    assert not (out / "mask_classifier.tflite").exists()
    rejected = json.loads((out / "mask_classifier_parity.rejected.json").read_text())  # kept to read why
    assert rejected["agreement"] == 1.0 and rejected["min_agreement"] == 1.01
    # the installed model's own report still describes the installed model
    assert (out / "mask_classifier_parity.json").read_text() == "the shipped model's report\n"


def _installed_pair(out: Path) -> dict[str, bytes]:
    """A model already in `out` (the colour fixture under the shipped names) and its report."""
    from tests.color_model import FIXTURE

    out.mkdir()
    for suffix in (".tflite", ".json"):
        (out / f"mask_classifier{suffix}").write_bytes(FIXTURE.with_suffix(suffix).read_bytes())
    (out / "mask_classifier_parity.json").write_text('{"n": 1}\n')
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.slow
@pytest.mark.workstation
def test_a_conversion_that_fails_while_installing_leaves_the_installed_model_whole(
    color_run, capsys, monkeypatch
):
    """The disk fills up half way through writing the new model: the old pair must still load."""
    import shutil

    from convert.cli import main
    from edge.classifier import MaskClassifier

    keras_model, root = color_run
    out = root / "disk_full"
    before = _installed_pair(out)
    real_copyfile = shutil.copyfile

    def copyfile(src, dst, **kwargs):
        if Path(src).suffix == ".tflite" and Path(dst).parent == out:
            Path(dst).write_bytes(Path(src).read_bytes()[:100])
            raise OSError(28, "No space left on device")
        return real_copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    code = main(["--keras-model", str(keras_model), "--data", str(root / "data"), "--out", str(out)])
    assert code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no half file, no stray temp file
    MaskClassifier(out / "mask_classifier.tflite", threads=1)  # the pair still loads


@pytest.mark.slow
@pytest.mark.workstation
def test_a_validation_split_without_faces_is_a_clear_error(color_run, capsys, tmp_path):
    from convert.cli import main

    keras_model, root = color_run
    (tmp_path / "none.json").write_text("[]")
    out = tmp_path / "out"
    code = main(["--keras-model", str(keras_model), "--data", str(root / "data"), "--out", str(out),
                 "--val-split", str(tmp_path / "none.json")])  # fmt: skip
    assert code == 1
    assert "no validation faces" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


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


def test_summary_prints_when_no_face_reaches_32_px(capsys):
    """A validation set of small faces has no >= 32 px agreement: the summary says so, not a TypeError."""
    from convert.cli import _print_summary
    from convert.parity import parity_report

    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    report = parity_report(["with_mask", "without_mask"], probs, probs, [20, 24], list(LABELS))
    _print_summary({**report, "model_bytes": 1000}, Path("models"))
    out = capsys.readouterr().out
    assert "top-1 agreement 1.0000 (faces >= 32 px: none)" in out


def test_calibration_without_a_class_is_said(caplog):
    from convert.cli import calibration_summary

    counts = calibration_summary(["with_mask"] * 200 + ["without_mask"] * 150)
    assert counts == {"with_mask": 200, "without_mask": 150, "mask_weared_incorrect": 0}
    assert "no mask_weared_incorrect" in caplog.text


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


# --- which faces calibrate and which check parity ---------------------------------------------------


def _fake_from_samples(calls: list):
    """A stand-in for crop_sets.from_samples that records the samples it was given (no images read)."""
    from convert.crop_sets import CropSet

    def from_samples(samples, spec, origin):
        samples = list(samples)
        calls.append(samples)
        size = spec.input_size
        return CropSet(
            crops=np.zeros((len(samples), size, size, 3), np.uint8),
            labels=[s.label for s in samples],
            face_px=[64] * len(samples),
            origin=origin,
        )

    return from_samples


def _class_folder_data(root: Path, per_label: int) -> list[FaceSample]:
    samples = []
    for label in LABELS:
        (root / label).mkdir(parents=True)
        for i in range(per_label):
            (root / label / f"{i:03d}.png").write_bytes(b"")
            samples.append(FaceSample(root / label / f"{i:03d}.png", label))
    return samples


def _run(tmp_path: Path, **fields):
    from convert.training_output import TrainingOutput

    (tmp_path / "run").mkdir(exist_ok=True)
    return TrainingOutput(
        keras_model=tmp_path / "run" / "model.keras",
        folder=tmp_path / "run",
        spec=PreprocessSpec(input_size=24),
        labels=list(LABELS),
        data_root=tmp_path / "data",
        **fields,
    )


def test_a_hash_split_never_takes_faces_of_the_run_s_other_list(tmp_path, monkeypatch):
    """With one split list given and the other side made by hash split, the hash split must not hand
    back the list's faces: calibrating on validation faces (or checking parity on training faces) leaks."""
    import convert.cli as cli

    samples = _class_folder_data(tmp_path / "data", per_label=150)
    val_list, train_list = samples[::3], [s for i, s in enumerate(samples) if i % 3]
    calls: list = []
    monkeypatch.setattr(cli, "from_samples", _fake_from_samples(calls))
    monkeypatch.setattr(cli, "MIN_CALIBRATION_CROPS", 10)

    cli.calibration_crops(_run(tmp_path, val_samples=val_list), count=1000, seed=0)
    assert calls[-1] and {s.image for s in calls[-1]}.isdisjoint({s.image for s in val_list})
    cli.validation_crops(_run(tmp_path, train_samples=train_list))
    assert calls[-1] and {s.image for s in calls[-1]}.isdisjoint({s.image for s in train_list})


def test_explicit_split_lists_beat_the_run_s_saved_crops(tmp_path, monkeypatch):
    """`--val-split` / `--train-split` name the faces to use; the run's saved crops must not override them."""
    import convert.cli as cli

    samples = _class_folder_data(tmp_path / "data", per_label=110)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes(b"")
    summary = {"labels": list(LABELS), "preprocess": PreprocessSpec(input_size=24).to_dict()}
    (tmp_path / "run" / "training_summary.json").write_text(json.dumps(summary))
    saved = {"crops": np.zeros((330, 24, 24, 3), np.uint8), "labels": np.arange(330) % 3,
             "face_px": np.full(330, 64), "is_real": np.ones(330, bool)}  # fmt: skip
    np.savez(tmp_path / "run" / "validation.npz", **saved)
    np.savez(tmp_path / "run" / "representative.npz", **saved)
    (tmp_path / "mine_val.json").write_text(
        json.dumps([{"image": str(s.image), "label": s.label} for s in samples[:5]])
    )
    (tmp_path / "mine_train.json").write_text(json.dumps([{"image": str(s.image), "label": s.label} for s in samples[5:]]))  # fmt: skip
    calls: list = []
    monkeypatch.setattr(cli, "from_samples", _fake_from_samples(calls))

    keras_model = tmp_path / "run" / "model.keras"
    run = read_training_output(keras_model, tmp_path / "data", val_split=tmp_path / "mine_val.json")
    assert cli.validation_crops(run).origin != "validation.npz" and calls[-1] == samples[:5]
    assert cli.calibration_crops(run, 1000, 0).origin == "representative.npz"  # not asked to change
    run = read_training_output(keras_model, tmp_path / "data", train_split=tmp_path / "mine_train.json")
    assert cli.calibration_crops(run, 1000, 0).origin != "representative.npz"
    assert {s.image for s in calls[-1]} <= {s.image for s in samples[5:]}
    assert cli.validation_crops(run).origin == "validation.npz"


def test_hash_split_is_the_same_wherever_the_data_folder_sits(tmp_path):
    """The split hashes the path inside the data folder, so `--data ../shared/data` and its absolute
    spelling (or another machine's location) put every image on the same side."""
    from convert.samples import hash_split

    names = [f"faces/with_mask/{i:03d}.png" for i in range(200)]
    here = [FaceSample(tmp_path / "a" / n, "with_mask") for n in names]
    there = [FaceSample(Path("/elsewhere/data") / n, "with_mask") for n in names]
    val_here = {s.image.relative_to(tmp_path / "a") for s in hash_split(here, root=tmp_path / "a")[1]}
    val_there = {s.image.relative_to(Path("/elsewhere/data")) for s in hash_split(there, root=Path("/elsewhere/data"))[1]}  # fmt: skip
    assert val_here and val_here == val_there
