"""The crop contract: square, grown by the margin, kept inside the frame, never empty, colour order explicit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.model_metadata import LABELS, ModelMetadata, ModelMetadataError, QuantParams
from edge.preprocess import (
    PreprocessSpec,
    crop_face,
    crop_whole_image,
    normalize_for_float_model,
    square_crop_box,
)


def test_square_box_grows_by_the_margin_around_the_centre():
    # 40x20 box, longer side 40, margin 0.25 -> side 60, centred on (70, 60)
    assert square_crop_box((50, 50, 90, 70), 640, 480, 0.25) == (40, 30, 100, 90)


def test_square_box_is_moved_inside_the_frame_not_cut():
    x1, y1, x2, y2 = square_crop_box((0, 0, 40, 40), 640, 480, 0.5)
    assert (x1, y1) == (0, 0) and x2 - x1 == y2 - y1 == 80
    x1, y1, x2, y2 = square_crop_box((620, 460, 640, 480), 640, 480, 0.5)
    assert (x2, y2) == (640, 480) and x2 - x1 == y2 - y1 == 40


def test_square_larger_than_the_frame_is_clipped_and_never_empty():
    assert square_crop_box((0, 0, 100, 50), 100, 50, 0.2) == (0, 0, 100, 50)
    x1, y1, x2, y2 = square_crop_box((10, 10, 10, 10), 30, 30, 0.0)  # a zero-size box
    assert x2 > x1 and y2 > y1
    with pytest.raises(ValueError):
        square_crop_box((0, 0, 1, 1), 0, 10, 0.2)


def test_crop_face_is_uint8_at_the_input_size_in_the_spec_order():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :, 2] = 200  # red in BGR
    spec = PreprocessSpec(input_size=32)
    crop = crop_face(frame, (20, 20, 60, 60), spec, frame_order="BGR")
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8 and crop.flags.c_contiguous
    assert crop[..., 0].min() == 200 and crop[..., 2].max() == 0  # RGB: red first
    rgb_crop = crop_face(frame[:, :, ::-1].copy(), (20, 20, 60, 60), spec, frame_order="RGB")
    assert np.array_equal(rgb_crop, crop)


def test_crop_face_rejects_bad_frames_and_orders():
    spec = PreprocessSpec(input_size=16)
    with pytest.raises(ValueError, match="uint8"):
        crop_face(np.zeros((10, 10, 3), np.float32), (0, 0, 5, 5), spec)
    with pytest.raises(ValueError, match="frame_order"):
        crop_face(np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 5), spec, frame_order="YUV")


def test_crop_whole_image_uses_every_pixel_without_margin():
    image = np.zeros((40, 40, 3), np.uint8)
    image[0, :, :] = 255  # the top row: would be lost if a margin or a shift were applied
    crop = crop_whole_image(image, PreprocessSpec(input_size=40, crop_margin=0.3))
    assert crop[0].min() == 255 and crop[1:].max() == 0


def test_small_crops_are_upscaled_smoothly():
    frame = np.zeros((20, 20, 3), np.uint8)
    frame[:, 10:] = 255
    crop = crop_face(frame, (0, 0, 20, 20), PreprocessSpec(input_size=80, crop_margin=0.0))
    assert len(np.unique(crop[40, :, 0])) > 2  # linear blends the edge; area would copy blocks


def test_float_model_input_is_the_same_pixels():
    crops = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    floats = normalize_for_float_model(crops)
    assert floats.dtype == np.float32 and np.array_equal(floats, crops)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour_order": "RGB"}, r"unknown \['colour_order'\]"),  # misspelt: not a silent default
        ({"crop_margin": None}, r"missing \['crop_margin'\]"),
        ({"color_order": "rgb"}, r"color_order 'rgb' is not one of RGB, BGR"),
        ({"interpolation": "cubic"}, r"interpolation 'cubic' is not one of area, linear"),
        (
            {"normalization": "imagenet_mean_std"},
            r"normalization 'imagenet_mean_std' is not 'in_model_minus1_1'",
        ),
        ({"crop_margin": -0.4}, r"crop_margin -0.4 is not in \[0, 2\]"),
        ({"input_size": 0}, r"input_size 0 is not an integer"),
    ],
)
def test_a_sidecar_asking_for_preprocessing_we_do_not_do_fails_at_load(tmp_path, change, message):
    spec = PreprocessSpec(input_size=96).to_dict()
    spec = {k: v for k, v in {**spec, **change}.items() if v is not None}
    meta = json.loads(
        ModelMetadata(
            list(LABELS), PreprocessSpec(), QuantParams("uint8", 1.0, 0), QuantParams("uint8", 1 / 256, 0)
        ).to_json()
    )
    with pytest.raises(ModelMetadataError, match=message):
        ModelMetadata.from_dict({**meta, "preprocess": spec})


def test_spec_and_metadata_round_trip_through_json():
    spec = PreprocessSpec(input_size=96, crop_margin=0.25)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    meta = ModelMetadata(list(LABELS), spec, QuantParams("uint8", 1.0, 0), QuantParams("uint8", 1 / 256, 0))

    again = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert again.preprocess == spec and again.labels == list(LABELS) and again.output.scale == 1 / 256
