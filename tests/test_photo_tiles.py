"""Large photos are searched in camera-sized tiles: small faces in them are found, each once."""

import cv2
import numpy as np
import pytest
import skimage

from edge import photo_tiles
from edge.config import DetectorConfig
from edge.faces import Face, FaceDetector
from edge.photo_tiles import INNER_EDGE_PX, cut_by_inner_edge, merged, needs_tiles, tile_shape, tile_starts
from tests.test_faces import ASTRONAUT_FACE, iou


def test_photos_up_to_one_and_a_half_camera_frames_are_run_whole():
    assert not needs_tiles(640, 480) and not needs_tiles(960, 720) and not needs_tiles(720, 960)
    assert needs_tiles(961, 400) and needs_tiles(300, 961) and needs_tiles(4000, 3000)


def test_tiles_turn_upright_for_portrait_photos_and_never_exceed_the_photo():
    assert tile_shape(4000, 3000) == (640, 480)
    assert tile_shape(3000, 4000) == (480, 640)
    assert tile_shape(4000, 300) == (640, 300)


@pytest.mark.parametrize(("length", "tile"), [(961, 640), (1000, 480), (4000, 640), (3000, 480), (1281, 640)])
def test_every_face_up_to_half_a_tile_lies_whole_in_a_tile_away_from_its_inner_edges(length, tile):
    """Stride half a tile, the last flush with the end: a face of up to half a tile, less the margins,
    has a tile where it touches no inner edge, wherever it sits."""
    starts = tile_starts(length, tile)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(b - a <= tile // 2 for a, b in zip(starts, starts[1:], strict=False))
    face = tile // 2 - 2 * INNER_EDGE_PX
    for a in range(0, length - face + 1, 7):
        assert any(
            not cut_by_inner_edge((a - s, 0, a - s + face, 10), (s, 0, s + tile, 10), length, 10)
            for s in starts
            if s <= a and a + face <= s + tile
        ), f"face at {a}..{a + face} is cut in every tile holding it"


def test_a_box_at_the_photo_s_own_edge_is_not_cut_but_one_at_an_inner_edge_is():
    tile = (0, 0, 640, 480)
    assert not cut_by_inner_edge((0, 0, 50, 50), tile, 2000, 1500)  # the photo's corner
    assert cut_by_inner_edge(
        (600, 100, 639, 150), tile, 2000, 1500
    )  # the tile's right edge, inside the photo
    assert not cut_by_inner_edge((600, 100, 639, 150), tile, 640, 1500)  # ... which is the photo's edge here


def _face(box, score):
    return Face(box=box, score=score, keypoints=((box[0], box[1]),))


def test_merged_keeps_the_best_box_of_each_face_and_drops_a_part_inside_it():
    faces = [
        _face((100, 100, 200, 200), 0.7),
        _face((105, 102, 204, 203), 0.9),  # the same face in the neighbouring tile, better scored
        _face((120, 120, 160, 150), 0.8),  # its eyes, found on their own at another level
        _face((400, 100, 480, 190), 0.6),  # another face
    ]
    assert [f.score for f in merged(faces)] == [0.9, 0.6]


def _photo_with_astronauts(width, height, face_px, centres):
    """A grey photo with the astronaut pasted so her face is `face_px` tall and centred at each point."""
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    scale = face_px / (ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
    image = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    photo = np.full((height, width, 3), 110, np.uint8)
    expected = []
    for cx, cy in centres:
        x0 = int(round(cx - (ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2 * scale))
        y0 = int(round(cy - (ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3]) / 2 * scale))
        sx, sy = max(0, -x0), max(0, -y0)  # the part of the picture inside the photo
        w, h = min(image.shape[1] - sx, width - x0 - sx), min(image.shape[0] - sy, height - y0 - sy)
        photo[y0 + sy : y0 + sy + h, x0 + sx : x0 + sx + w] = image[sy : sy + h, sx : sx + w]
        expected.append(tuple(v * scale + o for v, o in zip(ASTRONAUT_FACE, (x0, y0, x0, y0), strict=True)))
    return photo, expected


# face centres: inside one tile; across the inner edge x = 640 of the first tiles; across y = 480 and
# x = 1600; near the photo's bottom right corner
CENTRES = [(250, 200), (640, 900), (1600, 1440), (2980, 2250)]


@pytest.fixture(scope="module")
def large_photo():
    return _photo_with_astronauts(3200, 2400, 70, CENTRES)


def test_small_faces_in_a_large_photo_are_found_each_once(large_photo):
    photo, expected = large_photo
    faces = FaceDetector().detect(photo)
    assert len(faces) == len(expected), [f.box for f in faces]
    for box in expected:
        assert max(iou(face.box, box) for face in faces) >= 0.5, (box, [f.box for f in faces])
    for face in faces:  # keypoints moved with their box
        assert all(
            face.box[0] <= x <= face.box[2] and face.box[1] <= y <= face.box[3] for x, y in face.keypoints[:4]
        )


def test_without_tiles_the_same_faces_are_too_small_for_the_photo(large_photo):
    """70 px in a 3200 px photo is 7 px in the fine pass's input: what the tiles are for."""
    photo, _ = large_photo
    assert FaceDetector(DetectorConfig(photo_tiles=False)).detect(photo) == []


def test_a_face_larger_than_half_a_tile_is_found_at_a_coarser_level_and_once(monkeypatch):
    photo, (expected,) = _photo_with_astronauts(2000, 1500, 400, [(1000, 700)])
    searched = []
    search = photo_tiles.search
    monkeypatch.setattr(
        photo_tiles, "search", lambda detect, p: searched.append(p.shape) or search(detect, p)
    )
    face, *others = FaceDetector().detect(photo)
    assert searched == [photo.shape] and not others
    assert iou(face.box, expected) >= 0.5


def test_the_camera_stream_is_never_tiled(large_photo, monkeypatch):
    photo, _ = large_photo
    monkeypatch.setattr(photo_tiles, "search", lambda *a: pytest.fail("a stream frame was tiled"))
    FaceDetector(stream=True).detect(photo)
    FaceDetector(roi=(0.0, 0.0, 0.5, 1.0)).detect(photo)  # nor is a photo with a region of interest


def test_the_large_photo_bench_moves_each_frame_s_boxes_with_it_and_tells_seams_apart():
    from bench.detector_data import FRAME_H, FRAME_W, EvalFrame
    from bench.large_photos import BORDER, crosses_seam, mosaics

    frames = [
        EvalFrame(
            f"f{i}", np.full((FRAME_H, FRAME_W, 3), i, np.uint8), ((10.0, 20.0, 50.0, 80.0),), ("with_mask",)
        )
        for i in range(6)
    ]
    (photo,) = mosaics(frames, 2)  # four frames a photo; the two left over make no photo of their own
    assert photo.image.shape == (2 * FRAME_H + 2 * BORDER[1], 2 * FRAME_W + 2 * BORDER[0], 3)
    x0, y0 = BORDER[0] + FRAME_W, BORDER[1] + FRAME_H  # the fourth frame, bottom right
    assert photo.boxes[3] == (x0 + 10.0, y0 + 20.0, x0 + 50.0, y0 + 80.0)
    assert photo.image[y0 + 1, x0 + 1, 0] == 3 and photo.image[0, 0, 0] == 110
    assert crosses_seam(np.array([x0 - 20, 300, x0 + 20, 340]), 2)
    assert not crosses_seam(np.array([x0 + 1, 300, x0 + 40, 340]), 2)
