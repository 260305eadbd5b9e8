"""faces2 cleaning: group photos dropped, person photos re-cropped to the face, tight crops kept whole."""

from __future__ import annotations

from train.clean import clean_faces2
from train.data import FaceRecord


def _face(y1: float, y2: float, score: float = 0.9) -> dict:
    return {"box": [10.0, y1, 10.0 + (y2 - y1), y2], "score": score, "keypoints": []}


def _record(name: str) -> FaceRecord:
    return FaceRecord(
        f"faces2/with_mask/{name}",
        "faces2",
        "with_mask",
        f"faces2:{name}",
        f"faces2/with_mask/{name}",
        face_px=200,
    )


def test_cleaning_rules():
    keypoints = {
        "faces2/with_mask/group.jpg": {"faces": [_face(0, 50), _face(0, 40)], "image_size": [200, 200]},
        "faces2/with_mask/person.jpg": {"faces": [_face(20, 60), _face(0, 10)], "image_size": [200, 200]},
        "faces2/with_mask/tight.jpg": {"faces": [_face(40, 180)], "image_size": [200, 200]},
        "faces2/with_mask/missed.jpg": {"faces": [], "image_size": [200, 200]},
        "faces2/with_mask/weak.jpg": {
            "faces": [_face(0, 50), _face(0, 50, score=0.2)],
            "image_size": [200, 200],
        },
    }
    records = [_record(n) for n in ("group.jpg", "person.jpg", "tight.jpg", "missed.jpg", "weak.jpg")]
    kept, report = clean_faces2(records, keypoints)
    assert report["dropped"] == ["faces2/with_mask/group.jpg"]
    assert set(report["recropped"]) == {"faces2/with_mask/person.jpg", "faces2/with_mask/weak.jpg"}
    by_key = {r.key: r for r in kept}
    assert by_key["faces2/with_mask/person.jpg"].box == (10.0, 20.0, 50.0, 60.0)
    assert by_key["faces2/with_mask/person.jpg"].face_px == 40
    assert (
        by_key["faces2/with_mask/tight.jpg"].box is None and by_key["faces2/with_mask/missed.jpg"].box is None
    )
