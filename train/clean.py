"""Cleaning faces2 with the face detector: re-crop person photos to the face, drop group photos.

faces2 is meant to be face crops, but `with_mask` also holds street photos of one person, crowds, ads
and collages (see the data README's "Known label issues"). A classifier fed a whole street photo as
"a face" learns scenery. With BlazeFace run once per image (train/keypoints.py):
- two or more faces of similar size (the second at least half the height of the first): a group
  photo or collage with one label for many faces; dropped.
- one clear face under 30% of the image height (tight crops measure 40-95%): a photo of a person; the record becomes a
  box record on that face, cropped by the shared contract like a scene face.
- no face found, or one face filling the image: kept whole. Nearly all no-face images are tight
  masked faces the detector misses because of the mask (checked by eye on a contact sheet).
"""

from __future__ import annotations

import dataclasses
import logging

from train.data import FACES2, FaceRecord

log = logging.getLogger(__name__)

MIN_SCORE = 0.5
SECOND_FACE_RATIO = 0.5  # a second face at least this tall (relative to the largest) makes a group photo
RECROP_BELOW = 0.3  # a single face shorter than this share of the image height gets re-cropped


def _height(face: dict) -> float:
    return face["box"][3] - face["box"][1]


def clean_faces2(records: list[FaceRecord], keypoints: dict[str, dict]) -> tuple[list[FaceRecord], dict]:
    """(records after cleaning, {"dropped": [...keys], "recropped": [...keys]})."""
    kept, dropped, recropped = [], [], []
    for record in records:
        found = keypoints.get(record.key)
        if record.source != FACES2 or found is None:
            kept.append(record)
            continue
        faces = sorted((f for f in found["faces"] if f["score"] >= MIN_SCORE), key=_height, reverse=True)
        image_height = found["image_size"][1]
        if len(faces) >= 2 and _height(faces[1]) >= SECOND_FACE_RATIO * _height(faces[0]):
            dropped.append(record.key)
            continue
        if faces and _height(faces[0]) < RECROP_BELOW * image_height:
            box = tuple(faces[0]["box"])
            record = dataclasses.replace(
                record,
                box=box,
                face_px=int(round(box[3] - box[1])),
                extra={**record.extra, "recropped": True},
            )
            recropped.append(record.key)
        kept.append(record)
    log.info(
        "faces2 cleaning: %d group photos dropped, %d person photos re-cropped to the face",
        len(dropped),
        len(recropped),
    )
    return kept, {"dropped": dropped, "recropped": recropped}
