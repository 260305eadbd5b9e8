"""Synthetic faces: masks drawn by code on real unmasked faces, and the demo scene built from them.

None of the pipeline stages (camera -> faces -> classifier -> decision -> alarm) needs this package to
watch a real camera. It lives in edge/ because the daemon uses it: `maskwatch run --demo` (and the `demo`
camera source) plays demo.py's entrance sequence, and `maskwatch bench` times the detector on scene.py's
frames. train/synth.py imports the very same masks.py to draw masks on training faces, so the masks the
model learned from and the ones the demo shows are one piece of code (train/run.py hashes masks.py and
geometry.py into its crop-cache key).

- masks.py: `draw_mask` / `render_mask` draw a mask, worn correctly or in one of the wrong `PLACEMENTS`,
  on a face given BlazeFace's keypoints and box; `label_for` maps a placement to its class label.
- geometry.py: where a mask goes, a face-aligned frame and mask outlines (pure numpy).
- style.py: what a mask looks like (`MaskStyle`, `random_style`).
- scene.py: scikit-image's astronaut photo cut out and pasted into a 640x480 corridor, with ground truth.
- demo.py: the `--demo` sequence (`demo_frames`): three people walk up, each with the alarm they should raise.

Nothing is re-exported: import from the module (`from edge.synth.masks import draw_mask`), so each name
has one home and importing geometry.py alone stays numpy-only.
"""
