"""Frame sources: colour order and stride at the picamera2 boundary, files, folders, retry, pacing, motion."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.camera
from edge.camera import (
    CameraError,
    FrameListSource,
    FramePacer,
    ImageFolderSource,
    MotionGate,
    Picamera2Source,
    RetryingSource,
    SourceConfigError,
    VideoCaptureSource,
    fit_within,
    iter_frames,
    open_source,
    yuv420_to_bgr,
    yuv_is_full_range,
)
from edge.config import CameraConfig


def scene(width=640, height=480, seed=0) -> np.ndarray:
    """A smooth colourful BGR image (YUV420 subsampling keeps smooth images nearly intact)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6, 3)
    image = np.stack(
        [
            127 + 100 * np.sin(x / 37 + phase[0]),
            127 + 100 * np.sin(y / 23 + phase[1]),
            127 + 100 * np.sin((x + y) / 51 + phase[2]),
        ],
        axis=-1,
    )
    return image.astype(np.uint8)


# libcamera's three standard YUV colour spaces: (Kr, Kb, full range), named as picamera2's tests name them.
YUV_ENCODINGS = {
    "sYCC": (0.299, 0.114, True),
    "SMPTE170M": (0.299, 0.114, False),
    "Rec709": (0.2126, 0.0722, False),
}


def i420(bgr: np.ndarray, colour_space: str = "SMPTE170M") -> np.ndarray:
    """Planar YUV420 of a BGR image as the ISP writes it in `colour_space` (chroma averaged over 2x2):
    sYCC is BT.601 in full range (0-255), SMPTE 170M BT.601 in limited range (what OpenCV's I420
    conversions use), Rec.709 its own matrix in limited range."""
    kr, kb, full_range = YUV_ENCODINGS[colour_space]
    height, width = bgr.shape[:2]
    b, g, r = (bgr[..., i].astype(np.float64) / 255 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    luma_span, chroma_span, luma_floor = (255, 255, 0) if full_range else (219, 224, 16)
    planes = [
        luma_floor + luma_span * y,
        128 + chroma_span * (b - y) / (2 - 2 * kb),
        128 + chroma_span * (r - y) / (2 - 2 * kr),
    ]
    planes[1:] = [p.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)) for p in planes[1:]]
    flat = np.concatenate([p.reshape(-1) for p in planes])
    return np.clip(np.round(flat), 0, 255).astype(np.uint8).reshape(height * 3 // 2, width)


def padded_i420(bgr: np.ndarray, stride: int, colour_space: str = "SMPTE170M") -> np.ndarray:
    """What picamera2 hands over for a YUV420 lores stream: planes with rows `stride` bytes apart, as
    a (height * 3 / 2, stride) array, the padding filled with junk."""
    height, width = bgr.shape[:2]
    planar = i420(bgr, colour_space).reshape(-1)
    y, u, v = (
        planar[: width * height],
        planar[width * height : width * height * 5 // 4],
        planar[width * height * 5 // 4 :],
    )
    out = np.full(stride * height * 3 // 2, 77, np.uint8)
    out[: stride * height].reshape(height, stride)[:, :width] = y.reshape(height, width)
    half = stride // 2
    u_start, v_start = stride * height, stride * height + half * (height // 2)
    out[u_start:v_start].reshape(height // 2, half)[:, : width // 2] = u.reshape(height // 2, width // 2)
    out[v_start:].reshape(height // 2, half)[:, : width // 2] = v.reshape(height // 2, width // 2)
    return out.reshape(height * 3 // 2, stride)


@pytest.mark.parametrize(("width", "height", "stride"), [(640, 480, 640), (640, 480, 768), (320, 240, 384)])
def test_yuv420_with_stride_converts_to_the_same_bgr_as_unpadded(width, height, stride):
    bgr = scene(width, height)
    expected = cv2.cvtColor(padded_i420(bgr, width), cv2.COLOR_YUV2BGR_I420)
    frame = yuv420_to_bgr(padded_i420(bgr, stride), width, height, stride)
    assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, expected)
    assert np.abs(frame.astype(int) - bgr).mean() < 3  # and it is the picture, in BGR order


def test_yuv420_keeps_colour_order_red_stays_red():
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 2] = 220  # red in BGR
    frame = yuv420_to_bgr(padded_i420(bgr, 128), 64, 48, 128)
    assert frame[..., 2].mean() > 200 and frame[..., 0].mean() < 30


class FakeRequest:
    def __init__(self, buffer, main):
        self.buffer, self.main = buffer, main  # lores YUV420 with stride, main RGB888 (BGR in memory)
        self.released = False
        self.release_error: Exception | None = None

    def make_array(self, stream):
        assert stream == "main" and not self.released, "a released request's buffers are the camera's again"
        return self.main.copy()

    def release(self):
        self.released = True
        if self.release_error is not None:  # picamera2 requeues it: libcamera refuses a camera that is gone
            raise self.release_error


class FakeMappedArray:
    def __init__(self, request, stream, reshape=True):
        assert stream == "lores" and reshape is False
        self.array = request.buffer.reshape(-1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class BlocksForever(BaseException):
    """An untimed wait for a frame that never comes: picamera2 would hang there, the test stops."""


class FakeJob:
    """picamera2's Job: completed by the camera when a frame comes, then its signal_function is called."""

    def __init__(self, signal_function):
        self.signal_function = signal_function
        self.request: FakeRequest | None = None

    def complete(self, request):
        self.request = request
        if self.signal_function is not None:
            self.signal_function(self)


class FakeColorSpace:
    """libcamera.ColorSpace as picamera2 tells them apart: by primaries and transfer function."""

    def __init__(self, name: str):
        self.name = name
        self.primaries, self.transferFunction = {
            "sYCC": ("Rec709", "Srgb"),
            "SMPTE170M": ("Smpte170m", "Rec709"),
            "Rec709": ("Rec709", "Rec709"),
        }[name]

    def __repr__(self):
        return f"<libcamera.ColorSpace '{self.name}'>"


FAKE_COLOR_SPACES = types.SimpleNamespace(
    Sycc=lambda: FakeColorSpace("sYCC"),
    Smpte170m=lambda: FakeColorSpace("SMPTE170M"),
    Rec709=lambda: FakeColorSpace("Rec709"),
)


class FakePicamera2:
    """Just enough of picamera2.Picamera2 to check how the source configures and reads it."""

    instances: list = []
    frames_flow = True  # False: a camera that gives no frame (and no error)
    fail_configure = False
    old_wait = False  # picamera2 before 0.3.17: wait() takes no timeout
    adjusts_colour_space_to: str | None = None  # libcamera's validate() choosing another one

    def __init__(self):
        self.configured = self.started = self.closed = False
        self.requests = []
        self.jobs: list[FakeJob] = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, lores, controls, buffer_count, colour_space=None):
        # picamera2 picks sYCC when the main stream is RGB: drivers refused anything else for RGB streams
        colour_space = colour_space or FakeColorSpace("sYCC")
        self.video = {"main": main, "lores": lores, "controls": controls, "colour_space": colour_space}
        return self.video

    def configure(self, config):
        if FakePicamera2.fail_configure:
            raise RuntimeError("Failed to configure camera")
        if FakePicamera2.adjusts_colour_space_to:
            config["colour_space"] = FakeColorSpace(FakePicamera2.adjusts_colour_space_to)
        self.configured = True

    def start(self):
        self.started = True

    def camera_configuration(self):
        w, h = self.video["lores"]["size"]
        return {
            "lores": {"size": (w, h), "stride": w + 64, "format": "YUV420"},
            "colour_space": self.video["colour_space"],
        }

    def capture_request(self, wait=None, signal_function=None):
        """A job that the next frame completes (picamera2's dispatch_functions: with a signal_function
        and no `wait` it returns the job at once)."""
        if wait is None:
            wait = signal_function is None
        job = FakeJob(signal_function)
        self.jobs.append(job)
        if FakePicamera2.frames_flow:
            job.complete(self._next_request())
        return self.wait(job, timeout=None if wait is True else wait) if wait is not False else job

    def deliver(self):
        """The camera gives frames again: every job still waiting gets one."""
        for job in self.jobs:
            if job.request is None:
                job.complete(self._next_request())

    def _next_request(self):
        w, h = self.video["lores"]["size"]
        seed = len(self.requests)
        main = scene(*self.video["main"]["size"], seed=seed)
        lores = padded_i420(scene(w, h, seed=seed), w + 64, self.video["colour_space"].name)
        self.requests.append(FakeRequest(lores, main))
        return self.requests[-1]

    def wait(self, job, timeout=None):
        if FakePicamera2.old_wait and timeout is not None:
            raise TypeError("wait() got an unexpected keyword argument 'timeout'")
        if job.request is None:
            if timeout is None:
                raise BlocksForever("an untimed wait for a camera that gives no frame never returns")
            raise TimeoutError
        return job.request

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    FakePicamera2.instances, FakePicamera2.frames_flow = [], True
    FakePicamera2.fail_configure = FakePicamera2.old_wait = False
    FakePicamera2.adjusts_colour_space_to = None
    module = types.SimpleNamespace(Picamera2=FakePicamera2, MappedArray=FakeMappedArray)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setitem(sys.modules, "libcamera", types.SimpleNamespace(ColorSpace=FAKE_COLOR_SPACES))
    return FakePicamera2


def test_picamera2_main_rgb888_for_snapshots_lores_yuv420_for_analysis(fake_picamera2, monkeypatch):
    config = CameraConfig(width=320, height=240, snapshot_width=1280, snapshot_height=960, fps_limit=15)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    source = open_source("picamera2", config)
    assert isinstance(source, Picamera2Source)
    source.open()
    camera = fake_picamera2.instances[0]
    assert camera.video["main"] == {"size": (1280, 960), "format": "RGB888"}  # BGR in memory
    assert camera.video["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert camera.video["controls"] == {
        "FrameDurationLimits": (66667, 66667)
    }  # the sensor itself runs at 15 fps
    frame = source.read()
    assert frame.shape == (240, 320, 3)
    unpadded = yuv420_to_bgr(i420(scene(320, 240), "sYCC"), 320, 240, 320, full_range=True)
    np.testing.assert_array_equal(frame, unpadded)  # the stride's padding cut from every plane
    source.read()
    assert camera.requests[0].released, "every request goes back to the camera by the next read"
    source.close()
    assert camera.requests[1].released and camera.closed and not camera.started


def colour_patches(width, height) -> np.ndarray:
    """Flat patches of saturated and skin colours (flat, so chroma subsampling changes nothing)."""
    colours = [(30, 30, 220), (40, 180, 40), (200, 60, 30), (120, 150, 210), (200, 150, 80), (60, 200, 230)]
    image = np.zeros((height, width, 3), np.uint8)
    step = width // len(colours)
    for i, colour in enumerate(colours):
        image[:, i * step : (i + 1) * step] = colour
    return image


@pytest.mark.parametrize("applied", [None, "SMPTE170M"], ids=["sYCC as asked", "adjusted to SMPTE 170M"])
def test_picamera2_analysis_frames_keep_the_scene_colours_and_contrast(fake_picamera2, applied):
    """With an RGB main stream the lores YUV is sYCC, full range: decoded as OpenCV's limited range its
    contrast rose by 16 % (darks and highlights clipped, colours up to ~30 levels off). Whatever
    libcamera applies is read back and decoded as such."""
    fake_picamera2.adjusts_colour_space_to = applied
    config = CameraConfig(width=384, height=240, snapshot_width=1280, snapshot_height=960)
    source = Picamera2Source(config)
    source.open()
    camera = fake_picamera2.instances[0]
    assert camera.video["colour_space"].name == (applied or "sYCC")
    camera._next_request = lambda: FakeRequest(
        padded_i420(colour_patches(384, 240), 448, camera.video["colour_space"].name), None
    )
    frame = source.read()
    error = np.abs(frame.astype(int) - colour_patches(384, 240)).max()
    assert error <= 3, f"colours {error} levels off"
    source.close()


def test_yuv_range_is_told_by_the_colour_space_libcamera_reports():
    assert yuv_is_full_range(FakeColorSpace("sYCC"), FAKE_COLOR_SPACES)
    assert yuv_is_full_range(None, FAKE_COLOR_SPACES)  # not reported: picamera2's default for RGB main
    assert not yuv_is_full_range(FakeColorSpace("SMPTE170M"), FAKE_COLOR_SPACES)
    assert not yuv_is_full_range(FakeColorSpace("Rec709"), FAKE_COLOR_SPACES)


def test_a_low_frame_rate_cap_is_the_pacers_the_sensor_keeps_running(fake_picamera2):
    """libcamera hides ~8 frames after every start while AGC and AWB settle: at 2 fps those alone
    outlast the capture timeout, and the camera never gave a first frame."""
    source = Picamera2Source(CameraConfig(fps_limit=2))
    source.open()
    assert fake_picamera2.instances[0].video["controls"] == {"FrameDurationLimits": (100000, 100000)}
    source.close()
    fast = Picamera2Source(CameraConfig(fps_limit=30))
    fast.open()
    assert fake_picamera2.instances[1].video["controls"] == {"FrameDurationLimits": (33333, 33333)}
    fast.close()


def test_picamera2_full_frame_is_the_main_stream_of_the_frame_just_read(fake_picamera2):
    config = CameraConfig(width=320, height=240, snapshot_width=1280, snapshot_height=960)
    source = Picamera2Source(config)
    source.open()
    assert source.full_frame() is None, "nothing read yet"
    first = source.read()
    full = source.full_frame()
    assert full.shape == (960, 1280, 3) and first.shape == (240, 320, 3)
    np.testing.assert_array_equal(full, scene(1280, 960, seed=0))  # RGB888 is BGR already: no swap
    source.read()
    np.testing.assert_array_equal(source.full_frame(), scene(1280, 960, seed=1))
    assert not np.array_equal(full, source.full_frame()), "a copy, not a buffer the camera reuses"
    source.close()
    assert source.full_frame() is None


def test_retrying_source_passes_the_full_frame_on(fake_picamera2):
    source = RetryingSource(lambda: Picamera2Source(CameraConfig(snapshot_width=640, snapshot_height=480)))
    assert source.full_frame() is None
    source.read()
    assert source.full_frame().shape == (480, 640, 3)
    source.close()
    folder = RetryingSource(lambda: FrameListSource([scene()]))
    folder.read()
    assert folder.full_frame() is None, "sources without a main stream have no full frame"


@pytest.mark.parametrize("old_wait", [False, True], ids=["picamera2", "picamera2 before 0.3.17"])
def test_picamera2_without_a_frame_is_a_lost_camera(fake_picamera2, old_wait):
    fake_picamera2.old_wait = old_wait  # its wait() has no timeout: an untimed one would hang here
    source = Picamera2Source(CameraConfig(), capture_timeout_s=0.01)
    source.open()
    fake_picamera2.frames_flow = False
    with pytest.raises(CameraError, match="picamera2: no frame"):
        source.read()
    source.close()


def test_a_frame_that_comes_after_the_read_gave_up_goes_back_to_the_camera(fake_picamera2):
    source = Picamera2Source(CameraConfig(), capture_timeout_s=0.01)
    source.open()
    camera = fake_picamera2.instances[0]
    fake_picamera2.frames_flow = False
    with pytest.raises(CameraError):
        source.read()
    camera.deliver()  # the frame the timed-out job asked for comes after all
    assert len(camera.requests) == 1 and camera.requests[0].released, "nobody else would release it"


def test_picamera2_close_stops_the_camera_even_when_the_held_request_cannot_go_back(fake_picamera2):
    source = Picamera2Source(CameraConfig())
    source.open()
    source.read()
    camera = fake_picamera2.instances[0]
    camera.requests[0].release_error = RuntimeError("Failed to queue request")  # the camera is gone
    with pytest.raises(RuntimeError, match="Failed to queue request"):
        source.close()
    assert camera.closed and not camera.started, "left open, every reopen would find the camera busy"
    source.close()  # and closing again is harmless


def test_picamera2_that_fails_to_start_is_closed_so_the_next_attempt_can_have_it(fake_picamera2):
    fake_picamera2.fail_configure = True
    with pytest.raises(CameraError, match="cannot start the camera .Failed to configure"):
        Picamera2Source(CameraConfig()).open()
    assert fake_picamera2.instances[0].closed


def test_picamera2_whose_configuration_cannot_be_read_back_is_closed_too(fake_picamera2, monkeypatch):
    """Started, then failing: left acquired, every retry would find the camera busy."""
    monkeypatch.setattr(fake_picamera2, "camera_configuration", lambda self: {"lores": {}})
    with pytest.raises(CameraError, match="cannot start the camera"):
        Picamera2Source(CameraConfig()).open()
    assert fake_picamera2.instances[0].closed


def test_picamera2_that_does_not_report_its_colour_space_is_taken_as_sycc(fake_picamera2, monkeypatch):
    reported = fake_picamera2.camera_configuration
    monkeypatch.setattr(
        fake_picamera2, "camera_configuration", lambda self: {"lores": reported(self)["lores"]}
    )
    source = Picamera2Source(CameraConfig(width=384, height=240))
    source.open()
    camera = fake_picamera2.instances[0]
    camera._next_request = lambda: FakeRequest(padded_i420(colour_patches(384, 240), 448, "sYCC"), None)
    assert np.abs(source.read().astype(int) - colour_patches(384, 240)).max() <= 3
    source.close()


def test_picamera2_before_0_3_17_waits_for_the_job_it_asked_for(fake_picamera2):
    fake_picamera2.old_wait = True
    source = Picamera2Source(CameraConfig(width=320, height=240))
    source.open()
    for _ in range(3):
        assert source.read().shape == (240, 320, 3)
    camera = fake_picamera2.instances[0]
    # one request per frame, each released by the next read (the last is held for snapshots): a request
    # left unreleased keeps a camera buffer, and with four of them the camera stalls
    assert [r.released for r in camera.requests] == [True, True, False]


def test_picamera2_missing_is_an_install_error_not_a_lost_camera(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceConfigError, match="apt install python3-picamera2"):
        Picamera2Source(CameraConfig()).open()


def write_video(path, frames, fps=15):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_video_file_plays_to_its_end_or_loops(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, [scene(160, 120, seed=i) for i in range(5)])
    source = open_source(str(path), CameraConfig(width=640, height=480))
    assert isinstance(source, VideoCaptureSource)
    frames = list(iter_frames(source))
    assert len(frames) == 5 and frames[0].shape == (120, 160, 3)
    looping = VideoCaptureSource(str(path), CameraConfig(loop=True))
    looping.open()
    assert sum(looping.read() is not None for _ in range(12)) == 12
    looping.close()


def test_a_camera_that_cannot_open_is_a_camera_error():
    source = VideoCaptureSource("rtsp://127.0.0.1:9/none", CameraConfig())
    with pytest.raises(CameraError, match="cannot open"):
        source.open()


def test_a_video_file_opencv_cannot_read_ends_the_run_rather_than_being_retried(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not a video at all" * 100)
    config = CameraConfig(retry_initial_s=0.1)
    source = RetryingSource(lambda: open_source(str(path), config), wait=lambda s: False)
    with pytest.raises(SourceConfigError, match="clip.mp4: OpenCV cannot read it as a video"):
        source.read()
    assert source.failures == 0, "a file is not a camera that comes back"


def test_a_usb_camera_that_cannot_open_says_where_to_look():
    source = VideoCaptureSource(99, CameraConfig())  # no /dev/video99 here
    with pytest.raises(CameraError, match=r"usb camera 99: cannot open .*ls /dev/video.*video group"):
        source.open()


def test_a_video_file_whose_name_is_not_utf8_is_a_config_error_not_a_crash(tmp_path):
    name = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"entrance \xff.mp4"))
    Path(name).write_bytes(b"whatever it holds, OpenCV would crash on its name")
    with pytest.raises(SourceConfigError, match="not valid UTF-8; rename it"):
        VideoCaptureSource(name, CameraConfig()).open()


def test_a_stream_that_accepts_and_never_answers_is_given_up_within_the_stream_timeout(monkeypatch):
    """FFmpeg's own default is 30 s: as long as systemd's watchdog, and SIGTERM would wait behind it."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(edge.camera, "STREAM_TIMEOUT_MS", 1000)
    source = VideoCaptureSource(f"rtsp://127.0.0.1:{server.getsockname()[1]}/stream", CameraConfig())
    started = time.monotonic()
    with pytest.raises(CameraError, match="cannot open"):
        source.open()
    assert accepted, "the stream was reached and stalled, not refused"
    assert time.monotonic() - started < 10
    server.close()


def test_image_folder_turns_phone_photos_upright_by_their_exif_orientation(tmp_path):
    from PIL import Image

    landscape = np.zeros((40, 80, 3), np.uint8)
    landscape[:, :20] = 255  # a white band on the left
    photo = Image.fromarray(landscape)
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as a phone held upright writes it
    photo.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    (frame,) = iter_frames(ImageFolderSource(tmp_path, CameraConfig()))
    assert frame.shape == (80, 40, 3)
    assert frame[:20].mean() > 200 and frame[30:].mean() < 50, "the band is on top once upright"


def test_image_folder_takes_16_bit_and_transparent_pngs_as_8_bit_bgr(tmp_path):
    deep = scene(64, 48).astype(np.uint16) * 16  # 12-bit values in a 16-bit PNG
    cv2.imwrite(str(tmp_path / "a.png"), deep)
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(scene(64, 48, seed=1), cv2.COLOR_BGR2BGRA))
    first, second = iter_frames(ImageFolderSource(tmp_path, CameraConfig()))
    assert (
        first.dtype == np.uint8 and first.shape == (48, 64, 3) and first.max() == 255
    )  # scaled to its maximum
    np.testing.assert_array_equal(second, scene(64, 48, seed=1))


def test_image_folder_in_name_order_skipping_what_is_not_an_image(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), scene(64, 48, seed=2))
    cv2.imwrite(str(tmp_path / "a.png"), scene(64, 48, seed=1))
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(scene(64, 48, seed=3), cv2.COLOR_BGR2GRAY))
    (tmp_path / "d.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = list(iter_frames(open_source(str(tmp_path), CameraConfig())))
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[0], scene(64, 48, seed=1))
    assert frames[2].shape == (48, 64, 3)


def test_large_images_are_scaled_down_to_the_analysis_size(tmp_path):
    cv2.imwrite(str(tmp_path / "big.jpg"), scene(1280, 960))
    (frame,) = iter_frames(ImageFolderSource(tmp_path, CameraConfig(width=640, height=480)))
    assert frame.shape == (480, 640, 3)
    assert fit_within(frame, 640, 480) is frame


def test_an_empty_folder_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError, match="no images"):
        ImageFolderSource(tmp_path, CameraConfig()).open()


def test_a_looping_folder_of_broken_images_is_a_camera_error_not_a_hang(tmp_path):
    (tmp_path / "a.png").write_bytes(b"broken")
    source = ImageFolderSource(tmp_path, CameraConfig(loop=True))
    source.open()
    with pytest.raises(CameraError, match="none of its images is readable"):
        source.read()


def test_source_names(tmp_path):
    config = CameraConfig()
    assert isinstance(open_source("0", config), VideoCaptureSource)
    assert open_source("0", config).target == 0
    assert isinstance(open_source("rtsp://cam.local/stream", config), VideoCaptureSource)
    assert isinstance(open_source(str(tmp_path), config), ImageFolderSource)
    with pytest.raises(
        SourceConfigError, match="picamera2 is not installed"
    ):  # x86: checked at start, not retried
        open_source("picamera2", config)
    with pytest.raises(SourceConfigError, match="camera.source: '/no/such/clip.mp4' is not"):
        open_source("/no/such/clip.mp4", config)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 3))
        self.now += seconds
        return False


class FlakyCamera:
    """A camera that fails to open `fail_opens` times, then gives `frames` frames, then is lost."""

    def __init__(self, log, fail_opens=0, frames=3):
        self.log, self.fail_opens, self.frames = log, fail_opens, frames
        self.name = "flaky"

    def open(self):
        if self.log.count("open failed") < self.fail_opens:
            self.log.append("open failed")
            raise CameraError("not there")
        self.log.append("open")

    def read(self):
        if self.frames == 0:
            raise CameraError("unplugged")
        self.frames -= 1
        return np.zeros((4, 4, 3), np.uint8)

    def close(self):
        self.log.append("close")


def test_a_lost_camera_is_retried_with_growing_backoff_and_comes_back():
    clock, log = FakeClock(), []
    source = RetryingSource(
        lambda: FlakyCamera(log, fail_opens=4),
        initial_s=1.0,
        max_s=4.0,
        clock=clock,
        wait=clock.wait,
        poll_s=10.0,
    )
    source.open()  # not there yet: not fatal
    frames, errors = 0, 0
    while frames < 3:
        try:
            frames += source.read() is not None
        except CameraError:
            errors += 1
    assert errors == 3  # the first failure was open()'s
    assert clock.waits == [1.0, 2.0, 4.0, 4.0]  # doubling, capped at max_s
    assert source.reconnects == 1 and source.failures == 0
    with pytest.raises(CameraError, match="lost"):
        source.read()
    assert log[-1] == "close"


def test_retry_never_blocks_longer_than_poll_so_the_loop_stays_alive():
    clock, log = FakeClock(), []
    source = RetryingSource(
        lambda: FlakyCamera(log, fail_opens=100),
        initial_s=5.0,
        max_s=5.0,
        clock=clock,
        wait=clock.wait,
        poll_s=1.0,
    )
    for _ in range(12):
        with pytest.raises(CameraError):
            source.read()
    assert max(clock.waits) <= 1.0
    assert log.count("open failed") == 3  # attempts at t=0, 5, 10


def test_a_lost_camera_that_also_fails_to_close_is_still_a_lost_camera():
    class WedgedCamera(FlakyCamera):
        def close(self):
            raise RuntimeError("Failed to stop camera")

    clock = FakeClock()
    source = RetryingSource(lambda: WedgedCamera([], frames=1), clock=clock, wait=clock.wait)
    assert source.read() is not None
    with pytest.raises(CameraError, match="lost .unplugged"):
        source.read()
    assert source.failures == 1, "retried like any lost camera"


def test_a_wrong_source_name_is_not_retried():
    def factory():
        raise SourceConfigError("camera.source: nonsense")

    with pytest.raises(SourceConfigError):
        RetryingSource(factory).read()


def test_pacer_caps_the_frame_rate_without_bursts():
    clock = FakeClock()
    pacer = FramePacer(10.0, clock=clock, wait=clock.wait)
    pacer.wait()
    clock.now += 0.03  # a fast frame: wait the rest of the 0.1 s
    pacer.wait()
    clock.now += 0.5  # a slow frame: no wait, and no catching up afterwards
    pacer.wait()
    clock.now += 0.02
    pacer.wait()
    assert clock.waits == [0.07, 0.08]
    unlimited = FramePacer(0, clock=clock, wait=clock.wait)
    unlimited.wait()
    unlimited.wait()
    assert clock.waits == [0.07, 0.08]


def test_motion_gate_sees_a_still_scene_and_a_change():
    gate = MotionGate(threshold=0.01)
    still = scene()
    assert not gate.is_still(still)  # nothing to compare with yet
    assert gate.is_still(still.copy())
    noisy = np.clip(still.astype(int) + np.random.default_rng(0).integers(-4, 5, still.shape), 0, 255)
    assert gate.is_still(noisy.astype(np.uint8)), "sensor noise is not motion"
    moved = still.copy()
    moved[100:300, 200:360] = 30  # someone walks in
    assert not gate.is_still(moved)


def test_motion_gate_calls_a_frame_of_another_size_a_change():
    """Every thumbnail is 80x60: the same scene from a camera back at half the resolution looked still."""
    gate = MotionGate(threshold=0.01)
    still = scene()
    assert not gate.is_still(still)
    assert not gate.is_still(cv2.resize(still, (320, 240), interpolation=cv2.INTER_AREA))
    assert gate.is_still(cv2.resize(still, (320, 240), interpolation=cv2.INTER_AREA)), "then compared again"


def test_frame_list_source_returns_frames_by_reference_and_ends():
    frames = [np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)]
    source = FrameListSource(frames)
    source.open()
    assert source.read() is frames[0] and source.read() is frames[1] and source.read() is None


def test_image_folder_skips_a_jpeg_cut_short_and_macos_resource_forks(tmp_path, caplog):
    ok, whole = cv2.imencode(".jpg", scene(64, 48))
    (tmp_path / "a.jpg").write_bytes(whole.tobytes()[: len(whole) // 2])  # a copy cut off half way
    (tmp_path / "._b.jpg").write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
    cv2.imwrite(str(tmp_path / "c.png"), scene(64, 48, seed=1))
    frames = list(iter_frames(ImageFolderSource(tmp_path, CameraConfig())))
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0], scene(64, 48, seed=1))
    assert "a.jpg: the JPEG is cut short, skipped" in caplog.text
    assert "._b.jpg" not in caplog.text


def test_image_folder_reads_file_names_that_are_not_utf8(tmp_path):
    """cv2.imread crashed the whole process (SIGSEGV) on such a name: run in a child process."""
    folder = os.fsencode(tmp_path)
    ok, png = cv2.imencode(".png", scene(64, 48))
    with open(os.path.join(folder, b"camera card \xff.png"), "wb") as f:
        f.write(png.tobytes())
    code = (
        "import sys\n"
        "from edge.camera import ImageFolderSource, iter_frames\n"
        "from edge.config import CameraConfig\n"
        "frames = list(iter_frames(ImageFolderSource(sys.argv[1], CameraConfig())))\n"
        "print(len(frames), frames[0].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[0] == "1 (48, 64, 3)"
