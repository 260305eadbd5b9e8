"""Augmentation: the model's input format, reproducible from a seed, and the identity when switched off."""

from __future__ import annotations

import numpy as np

from edge.preprocess import PreprocessSpec, crop_face, crop_whole_image
from train.augment import AugmentConfig, augment_batch, augment_face
from train.crops import context_size, face_pixels
from train.data import FaceRecord

OFF = AugmentConfig(
    scale_range=(1.0, 1.0), shift=0.0, max_rotation_deg=0.0, flip_p=0.0, low_res_p=0.0, blur_p=0.0,
    photometric_p=0.0, noise_p=0.0, jpeg_p=0.0, loose_p=0.0,
)  # fmt: skip


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    frame[40:80, 60:100] = (0, 0, 255)  # a red square "face" (BGR)
    return frame


def _face(spec: PreprocessSpec):
    record = FaceRecord("s.jpg#0", "scenes", "with_mask", "g", "s.jpg", box=(60, 40, 100, 80), face_px=40)
    return face_pixels(record, _frame(), spec)


def test_shape_dtype_and_range():
    spec = PreprocessSpec(input_size=64)
    _, context, fraction = _face(spec)
    assert context.shape == (context_size(spec),) * 2 + (3,)
    batch = augment_batch(np.stack([context] * 5), np.full(5, fraction), 64, np.random.default_rng(1))
    assert batch.shape == (5, 64, 64, 3) and batch.dtype == np.uint8


def test_same_seed_same_pixels_other_seed_other_pixels():
    _, context, fraction = _face(PreprocessSpec(input_size=64))
    a = augment_face(context, fraction, 64, np.random.default_rng(7))
    b = augment_face(context, fraction, 64, np.random.default_rng(7))
    c = augment_face(context, fraction, 64, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_switched_off_it_reproduces_the_contract_crop():
    spec = PreprocessSpec(input_size=64)
    contract, context, fraction = _face(spec)
    out = augment_face(context, fraction, 64, np.random.default_rng(0), OFF)
    assert contract[32, 32].tolist() == [255, 0, 0]  # RGB: the red face sits in the middle
    assert np.abs(out.astype(int) - contract.astype(int)).mean() < 25


def _green(crop: np.ndarray) -> np.ndarray:
    """Where the green face is (the noise around it resamples differently at every scale)."""
    return (crop[:, :, 1] > 200) & (crop[:, :, 0] < 60)


def _record(box) -> FaceRecord:
    return FaceRecord("s.jpg#0", "scenes", "with_mask", "g", "s.jpg", box=box, face_px=box[3] - box[1])


def test_switched_off_it_reproduces_the_contract_crop_of_a_face_at_the_frame_edge():
    """The contract square is moved inside the frame there; the augmenter must centre on it, not on the face."""
    spec = PreprocessSpec(input_size=64)
    for box in [(0, 40, 40, 80), (124, 2, 160, 38)]:  # against the left edge; in the top right corner
        frame = _frame()
        frame[box[1] : box[3], box[0] : box[2]] = (0, 255, 0)
        contract, context, fraction = face_pixels(_record(box), frame, spec)
        out = augment_face(context, fraction, 64, np.random.default_rng(0), OFF)
        assert (_green(out) != _green(contract)).mean() < 0.03, box


def test_switched_off_it_reproduces_a_contract_crop_clipped_by_a_small_frame():
    """A square larger than the frame is clipped and stretched by the contract; training sees the same."""
    spec = PreprocessSpec(input_size=64)
    frame = _frame()
    box = (60, 15, 100, 105)  # 90 px tall in a 120 px frame: the 126 px square is cut to 120
    frame[15:105, 60:100] = (0, 255, 0)
    contract, context, fraction = face_pixels(_record(box), frame, spec)
    out = augment_face(context, fraction, 64, np.random.default_rng(0), OFF)
    assert (_green(out) != _green(contract)).mean() < 0.03


def test_jpeg_artefacts_are_those_of_the_same_picture_saved_by_a_camera():
    import cv2

    rgb = crop_face(_frame(), (60, 40, 100, 80), PreprocessSpec(input_size=64), frame_order="BGR")
    only_jpeg = AugmentConfig(**{**OFF.__dict__, "jpeg_p": 1.0, "jpeg_quality": (40, 40)})
    out = augment_face(rgb, 1.0, 64, np.random.default_rng(0), only_jpeg)
    ok, saved = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 40])
    camera = cv2.cvtColor(cv2.imdecode(saved, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert ok and np.array_equal(out, camera)


def _loose(scale: float) -> AugmentConfig:
    return AugmentConfig(
        scale_range=(1.0, 1.2), loose_p=1.0, loose_scale_range=(scale, scale), shift=0.0, max_rotation_deg=0.0,
        flip_p=0.0, low_res_p=0.0, blur_p=0.0, photometric_p=0.0, noise_p=0.0, jpeg_p=0.0,
    )  # fmt: skip


def test_a_loose_crop_is_the_contract_crop_with_more_margin_from_real_pixels():
    spec = PreprocessSpec(input_size=64)
    _, context, fraction = _face(spec)
    out = augment_face(context, fraction, 64, np.random.default_rng(0), _loose(1.5))
    # 1.5 x the contract side (1 + 2 * 0.2) is the contract crop with a margin of 0.55
    wider = crop_face(_frame(), (60, 40, 100, 80), PreprocessSpec(input_size=64, crop_margin=0.55))
    assert np.abs(out.astype(int) - wider.astype(int)).mean() < 25
    red = (out[:, :, 0] > 200) & (out[:, :, 1] < 60)
    assert 0.15 < red.mean() < 0.3  # the 40 px face fills (40 / 84)^2 = 0.23 of the crop, not 0.51


def test_whole_image_faces_are_never_drawn_looser_than_the_normal_range():
    spec = PreprocessSpec(input_size=64)
    record = FaceRecord("c.jpg", "faces2", "with_mask", "g", "c.jpg", box=None, face_px=120)
    _, context, fraction = face_pixels(record, _frame(), spec)
    loose = augment_face(context, fraction, 64, np.random.default_rng(0), _loose(1.6))
    normal_max = AugmentConfig(**{**_loose(1.6).__dict__, "loose_p": 0.0, "scale_range": (1.2, 1.2)})
    assert np.array_equal(loose, augment_face(context, fraction, 64, np.random.default_rng(0), normal_max))


def _tight(aspect: float) -> AugmentConfig:
    return AugmentConfig(
        **{
            **OFF.__dict__,
            "tight_p": 1.0,
            "tight_scale_range": (1 / 1.4, 1 / 1.4),
            "tight_aspect_range": (aspect, aspect),
        }
    )


def test_a_tight_crop_is_the_face_box_cut_out_and_stretched_square_as_crop_datasets_hold_it():
    frame = _frame()
    frame[40:80, 65:95] = (0, 255, 0)  # a green face 30 px wide, 40 tall, inside the red square
    box = (65, 40, 95, 80)
    record = FaceRecord("s.jpg#0", "scenes", "without_mask", "g", "s.jpg", box=box, face_px=40)
    spec = PreprocessSpec(input_size=64)
    _, context, fraction = face_pixels(record, frame, spec)
    out = augment_face(context, fraction, 64, np.random.default_rng(0), _tight(30 / 40))
    cut = crop_whole_image(np.ascontiguousarray(frame[40:80, 65:95]), spec)  # what `evaluate` scores
    green = (out[:, :, 1] > 200) & (out[:, :, 0] < 60)
    assert green[4:-4, 4:-4].all()  # the 1.4 x box square would show red on both sides
    assert np.abs(out.astype(int) - cut.astype(int)).mean() < 20


def test_whole_image_faces_are_never_drawn_tight_they_already_are_the_box():
    record = FaceRecord("c.jpg", "faces2", "with_mask", "g", "c.jpg", box=None, face_px=120)
    _, context, fraction = face_pixels(record, _frame(), PreprocessSpec(input_size=64))
    tight = augment_face(context, fraction, 64, np.random.default_rng(0), _tight(0.7))
    assert np.array_equal(tight, augment_face(context, fraction, 64, np.random.default_rng(0), OFF))
