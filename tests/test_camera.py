"""Frame sources: colour order and stride at the picamera2 boundary, files, folders, retry, pacing, motion."""

from __future__ import annotations

import socket
import sys
import threading
import time
import types

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


def padded_i420(bgr: np.ndarray, stride: int) -> np.ndarray:
    """What picamera2 hands over for a YUV420 lores stream: planes with rows `stride` bytes apart, as
    a (height * 3 / 2, stride) array, the padding filled with junk."""
    height, width = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y, u, v = (
        i420[: width * height],
        i420[width * height : width * height * 5 // 4],
        i420[width * height * 5 // 4 :],
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

    def make_array(self, stream):
        assert stream == "main" and not self.released, "a released request's buffers are the camera's again"
        return self.main.copy()

    def release(self):
        self.released = True


class FakeMappedArray:
    def __init__(self, request, stream, reshape=True):
        assert stream == "lores" and reshape is False
        self.array = request.buffer.reshape(-1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class FakePicamera2:
    """Just enough of picamera2.Picamera2 to check how the source configures and reads it."""

    instances: list = []
    fail_capture = False
    fail_configure = False
    old_wait = False  # picamera2 before 0.3.17: wait() takes no timeout

    def __init__(self):
        self.configured = self.started = self.closed = False
        self.requests = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, lores, controls, buffer_count):
        self.video = {"main": main, "lores": lores, "controls": controls}
        return self.video

    def configure(self, config):
        if FakePicamera2.fail_configure:
            raise RuntimeError("Failed to configure camera")
        self.configured = True

    def start(self):
        self.started = True

    def camera_configuration(self):
        w, h = self.video["lores"]["size"]
        return {"lores": {"size": (w, h), "stride": w + 64, "format": "YUV420"}}

    def capture_request(self, wait=None):
        """A job that `wait` turns into the next frame's request (a camera with no frame: one that fails)."""
        assert wait is False, "an untimed capture_request() waits forever on a camera that gives no frame"
        if FakePicamera2.fail_capture:
            return "failed job"
        w, h = self.video["lores"]["size"]
        seed = len(self.requests)
        main = scene(*self.video["main"]["size"], seed=seed)
        self.requests.append(FakeRequest(padded_i420(scene(w, h, seed=seed), w + 64), main))
        return ("job", self.requests[-1])

    def wait(self, job, timeout=None):
        if FakePicamera2.old_wait and timeout is not None:
            raise TypeError("wait() got an unexpected keyword argument 'timeout'")
        assert timeout is not None or FakePicamera2.old_wait, "the wait for a frame must have a timeout"
        if job == "failed job":
            raise TimeoutError("no frame")
        return job[1]

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    FakePicamera2.instances, FakePicamera2.fail_capture = [], False
    FakePicamera2.fail_configure = FakePicamera2.old_wait = False
    module = types.SimpleNamespace(Picamera2=FakePicamera2, MappedArray=FakeMappedArray)
    monkeypatch.setitem(sys.modules, "picamera2", module)
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
    np.testing.assert_array_equal(
        frame, cv2.cvtColor(padded_i420(scene(320, 240), 320), cv2.COLOR_YUV2BGR_I420)
    )
    source.read()
    assert camera.requests[0].released, "every request goes back to the camera by the next read"
    source.close()
    assert camera.requests[1].released and camera.closed and not camera.started


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


def test_picamera2_without_a_frame_is_a_lost_camera(fake_picamera2):
    source = Picamera2Source(CameraConfig())
    source.open()
    fake_picamera2.fail_capture = True
    with pytest.raises(CameraError, match="picamera2: no frame"):
        source.read()


def test_picamera2_that_fails_to_start_is_closed_so_the_next_attempt_can_have_it(fake_picamera2):
    fake_picamera2.fail_configure = True
    with pytest.raises(CameraError, match="cannot start the camera .Failed to configure"):
        Picamera2Source(CameraConfig()).open()
    assert fake_picamera2.instances[0].closed


def test_picamera2_without_a_capture_timeout_waits_for_the_job_it_asked_for(fake_picamera2):
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


def test_frame_list_source_returns_frames_by_reference_and_ends():
    frames = [np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)]
    source = FrameListSource(frames)
    source.open()
    assert source.read() is frames[0] and source.read() is frames[1] and source.read() is None
