"""Frame sources behind one interface: `open()`, `read()` -> BGR frame or None at the end, `close()`.

The loop neither knows nor cares where frames come from: a Pi camera (picamera2), a USB camera, a video
file or RTSP stream (OpenCV), a folder of images, or frames in memory (the demo and tests). Every source
returns HxWx3 uint8 frames in BGR order; colour order is converted at this boundary, nowhere else.

A live camera that stops giving frames raises CameraError; `RetryingSource` turns that into reopen
attempts with backoff, so a lost camera is retried, never fatal. `FramePacer` (the frame rate cap) and
`MotionGate` are the two cheap ways to spend less CPU.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.config import CameraConfig

log = logging.getLogger(__name__)

_PICAMERA2_MISSING = (
    "camera.source: picamera2 is not installed (Raspberry Pi OS: sudo apt install python3-picamera2, and make the "
    "venv with --system-site-packages); on other machines set camera.source to a USB camera index such as 0"
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STREAM_TIMEOUT_MS = 5000  # open and read timeout of network streams (rtsp://, http://)


class CameraError(OSError):
    """The camera could not be opened or stopped giving frames. Retried by RetryingSource."""


class SourceConfigError(ValueError):
    """`camera.source` names something that cannot be a frame source (e.g. a path that does not exist)."""


class FrameSource(Protocol):
    """A source may also offer `full_frame()`: the last read frame at a higher resolution (picamera2's
    main stream) or None, valid until the next `read()`. The loop passes it on to the observers."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None:
        """The next BGR uint8 frame, or None when a finite source has ended. Raises CameraError."""

    def close(self) -> None: ...


def fit_within(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Downscale (never upscale) to fit width x height, keeping the aspect; the same array if it fits."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    if scale >= 1.0:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA images (PNG folders) to 3-channel BGR."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


# --- picamera2 -------------------------------------------------------------------------------------


# sYCC (JPEG) YUV spans 0-255; OpenCV's I420 conversion decodes BT.601 limited range (Y 16-235, chroma
# 16-240). These tables move full-range planes into limited range first, so one conversion serves both.
_FULL_TO_LIMITED_Y = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_FULL_TO_LIMITED_CHROMA = np.round(128 + (np.arange(256) - 128) * 224 / 255).astype(np.uint8)


def yuv420_to_bgr(
    buffer: np.ndarray, width: int, height: int, stride: int, full_range: bool = False
) -> np.ndarray:
    """A planar YUV420 (I420) buffer with rows `stride` bytes apart, as a BGR frame.

    picamera2 hands the lores stream over as (height * 3 / 2, stride) bytes: the Y plane of `height`
    rows, then U and V planes of height/2 rows each `stride / 2` bytes apart. When stride == width this
    is exactly OpenCV's I420 layout and converts without a copy; otherwise the padding is cut from each
    plane first (slicing the combined array would mix U and V rows). BT.601 either way; `full_range` for
    sYCC/JPEG planes (0-255), else SMPTE 170M's limited range.
    """
    flat = buffer.reshape(-1)
    if stride == width:
        i420 = flat[: width * height * 3 // 2].reshape(height * 3 // 2, width)
    else:
        half_w, half_h, half_stride = width // 2, height // 2, stride // 2
        y_end = stride * height
        u_end = y_end + half_stride * half_h
        i420 = np.empty((height * 3 // 2, width), np.uint8)
        i420[:height] = flat[:y_end].reshape(height, stride)[:, :width]
        chroma = i420[height:].reshape(-1)
        plane = half_w * half_h
        chroma[:plane] = flat[y_end:u_end].reshape(half_h, half_stride)[:, :half_w].reshape(-1)
        chroma[plane:] = (
            flat[u_end : u_end + half_stride * half_h].reshape(half_h, half_stride)[:, :half_w].reshape(-1)
        )
    if full_range:
        limited = np.empty_like(i420)
        limited[:height] = cv2.LUT(i420[:height], _FULL_TO_LIMITED_Y)
        limited[height:] = cv2.LUT(i420[height:], _FULL_TO_LIMITED_CHROMA)
        i420 = limited
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def yuv_is_full_range(colour_space, colour_spaces) -> bool:
    """Whether libcamera's `colour_space` (as picamera2's camera_configuration() reports it) writes YUV
    in full range: sYCC/JPEG yes, SMPTE 170M and Rec.709 no.

    Told apart by primaries and transfer function, as picamera2 does: on an RGB stream (the first one,
    which camera_configuration() reports) libcamera clears the YCbCr matrix and range. `colour_spaces`
    is libcamera's ColorSpace class. None (not reported) is picamera2's default for an RGB main stream,
    sYCC.
    """
    if colour_space is None:
        return True

    def same(a, b) -> bool:
        return a.primaries == b.primaries and a.transferFunction == b.transferFunction

    if same(colour_space, colour_spaces.Sycc()):
        return True
    if not same(colour_space, colour_spaces.Smpte170m()):
        log.warning(
            "picamera2: lores colour space %s is neither sYCC nor SMPTE 170M; decoded as BT.601 limited "
            "range, colours may be off",
            colour_space,
        )
    return False


MIN_SENSOR_FPS = 10.0  # a lower camera.fps_limit is FramePacer's to keep; the sensor runs at this


def _frame_rate_controls(fps: float) -> dict:
    """libcamera's FrameDurationLimits (every picamera2 version knows it; "FrameRate" is newer sugar).

    Never slower than MIN_SENSOR_FPS: after every start libcamera hides the frames its AGC and AWB take
    to settle (about 8), and at 2 fps those alone outlast the capture timeout, so the camera would never
    give its first frame and be retried forever.
    """
    if not fps:
        return {}
    frame_us = int(round(1e6 / max(fps, MIN_SENSOR_FPS)))
    return {"FrameDurationLimits": (frame_us, frame_us)}


class _PendingRequest:
    """One `capture_request` job, waited for at most `timeout_s` on every picamera2 version.

    `wait(job, timeout)` only came with picamera2 0.3.17 (Raspberry Pi OS images of 2023 ship older
    ones, and an untimed wait on a camera that gives no frame never returns); a job's signal_function
    is as old as asynchronous capture. A request that comes after the read gave up is released as it
    arrives: nobody else would, and the camera has only buffer_count buffers.
    """

    def __init__(self, camera):
        self._camera = camera
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._job = camera.capture_request(signal_function=self._signal)

    def _signal(self, job) -> None:  # on picamera2's event loop thread
        with self._lock:
            self._done.set()
            late = self._abandoned
        if late:
            try:
                request = self._camera.wait(job)
            except Exception:
                return
            if request is not None:
                request.release()

    def result(self, timeout_s: float):
        if not self._done.wait(timeout_s):
            with self._lock:
                self._abandoned = not self._done.is_set()
            if self._abandoned:
                raise TimeoutError("no request completed")
        return self._camera.wait(self._job)


def _reported_colour_space(applied):
    """The colour space in picamera2's camera_configuration(), or None where a version does not say."""
    try:
        return applied["colour_space"]
    except (KeyError, TypeError):
        return None


class Picamera2Source:
    """The Pi camera: a `main` stream for snapshots and a small `lores` YUV420 stream for analysis.

    The ISP scales the sensor image to the lores size for free, so analysis never resizes on the CPU.
    "RGB888" in libcamera's naming is B, G, R in memory, i.e. already OpenCV's BGR: no swap. The YUV
    colour space is sYCC (BT.601, full range), picamera2's own choice with an RGB main stream (older
    drivers accept nothing else for RGB streams); asked for by name, and read back after configure, since
    libcamera may adjust it. OpenCV's I420 conversion assumes limited range: decoding full range that way
    raised contrast by 16 % (blacks and highlights clipped), so full-range planes are rescaled first.
    Both streams come from the same request, so `full_frame()` is the very moment `read()` returned, at
    the main stream's resolution: the request is held until the next `read()` (or `close()`), and its
    main buffer is copied only when asked (violation snapshots).
    picamera2 is imported here, lazily: it only comes from apt on Raspberry Pi OS.
    """

    def __init__(self, config: CameraConfig, capture_timeout_s: float = 2.0):
        self.config = config
        self.name = "picamera2"
        self.capture_timeout_s = capture_timeout_s
        self._camera = None
        self._lores: tuple[int, int, int] | None = None  # width, height, stride
        self._full_range = True  # the lores YUV's range, read back after configure
        self._mapped_array = None
        self._held = None  # the last read's request, for full_frame()

    def open(self) -> None:
        try:
            from libcamera import ColorSpace  # picamera2's own dependency (python3-libcamera)
            from picamera2 import MappedArray, Picamera2
        except ImportError as exc:
            raise SourceConfigError(_PICAMERA2_MISSING) from exc
        c = self.config
        camera = None
        try:
            camera = Picamera2()
            video = camera.create_video_configuration(
                main={"size": (c.snapshot_width, c.snapshot_height), "format": "RGB888"},
                lores={"size": (c.width, c.height), "format": "YUV420"},
                colour_space=ColorSpace.Sycc(),  # picamera2's default for RGB main, said out loud
                controls=_frame_rate_controls(c.fps_limit),
                buffer_count=4,
            )
            camera.configure(video)
            camera.start()
            applied = camera.camera_configuration()  # what libcamera made of the request
            lores = applied["lores"]
            lores_shape = (lores["size"][0], lores["size"][1], lores["stride"])
            colour_space = _reported_colour_space(applied)
        except Exception as exc:  # libcamera raises RuntimeError/IndexError when no camera is attached
            if camera is not None:  # Picamera2() acquired it: unreleased, every retry would find it busy
                try:
                    camera.close()
                except Exception:
                    log.debug("closing the camera after a failed start raised", exc_info=True)
            raise CameraError(f"picamera2: cannot start the camera ({exc})") from exc
        self._lores = lores_shape
        self._full_range = yuv_is_full_range(colour_space, ColorSpace)
        self._camera, self._mapped_array = camera, MappedArray
        log.info(
            "picamera2 started: lores %dx%d stride %d YUV420 (%s range), main %s RGB888, colour space %s",
            *self._lores,
            "full" if self._full_range else "limited",
            video["main"]["size"],
            colour_space,
        )

    def read(self) -> np.ndarray:
        if self._camera is None:
            raise CameraError("picamera2: camera not open")
        self._release_held()
        try:
            request = self._capture_request()
        except Exception as exc:
            raise CameraError(f"picamera2: no frame within {self.capture_timeout_s} s ({exc})") from exc
        try:
            with self._mapped_array(request, "lores", reshape=False) as mapped:  # no copy of the YUV buffer
                width, height, stride = self._lores
                frame = yuv420_to_bgr(mapped.array, width, height, stride, self._full_range)
        except BaseException:
            request.release()
            raise
        self._held = request
        return frame

    def _capture_request(self):
        return _PendingRequest(self._camera).result(self.capture_timeout_s)

    def full_frame(self) -> np.ndarray | None:
        """The last `read()`'s frame from the main stream (snapshot_width x snapshot_height), BGR, a copy."""
        return None if self._held is None else self._held.make_array("main")

    def _release_held(self) -> None:
        request, self._held = self._held, None
        if request is not None:
            request.release()

    def close(self) -> None:
        camera, self._camera = self._camera, None
        try:
            self._release_held()  # requeues the request: raises on a camera that is gone
        finally:
            if camera is not None:  # stopped and closed all the same, or the next open finds it busy
                try:
                    camera.stop()
                finally:
                    camera.close()


# --- OpenCV: USB camera, video file, RTSP ------------------------------------------------------------


_CANNOT_OPEN_HINT = (
    " (is it plugged in? `ls /dev/video*` lists the cameras; the service's user needs the video group; "
    "another program may hold it)"
)


def _utf8_name(path: str) -> bool:
    """Whether a file name decodes as UTF-8: OpenCV's file readers crash (SIGSEGV) on one that does not."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class VideoCaptureSource:
    """OpenCV capture of a USB camera index, a /dev/video node, a video file or an RTSP/HTTP URL.

    A video file is finite: it ends (or rewinds with `loop`); one OpenCV cannot open is a configuration
    error. A camera or stream that fails to open or read is lost: CameraError.
    """

    def __init__(self, target: int | str, config: CameraConfig):
        self.target = target
        self.config = config
        self.is_file = isinstance(target, str) and Path(target).is_file()
        self.name = f"usb camera {target}" if isinstance(target, int) else str(target)
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self.is_file and not _utf8_name(self.target):  # OpenCV would crash the process on it
            raise SourceConfigError(
                f"camera.source: {self.name}: OpenCV cannot open a file whose name is not valid UTF-8; "
                "rename it"
            )
        if isinstance(self.target, str) and "://" in self.target:
            # FFmpeg waits 30 s by default for a stream that stalls: past systemd's 30 s watchdog, and
            # SIGTERM waits behind it. Bounded, a stalled stream is a lost camera like any other.
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                STREAM_TIMEOUT_MS,
            ]
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, timeouts)
        else:
            capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            if self.is_file:  # a file does not come back like an unplugged camera: not retried
                raise SourceConfigError(f"camera.source: {self.name}: OpenCV cannot read it as a video")
            raise CameraError(
                f"{self.name}: cannot open{_CANNOT_OPEN_HINT if isinstance(self.target, int) else ''}"
            )
        if not self.is_file:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued behind a slow loop
        self._capture = capture
        log.info("%s opened", self.name)

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            raise CameraError(f"{self.name}: not open")
        ok, frame = self._capture.read()
        if not ok and self.is_file and self.config.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok:
            if self.is_file:
                return None
            raise CameraError(f"{self.name}: no frame")
        return fit_within(as_bgr(frame), self.config.width, self.config.height)

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


# --- frames from files or memory --------------------------------------------------------------------


def _read_image(path: Path) -> np.ndarray | None:
    """An image file decoded by OpenCV from bytes Python read, or None with a warning saying why.

    Not cv2.imread: it crashes the process on a file name that is not valid UTF-8 (a camera card's or an
    old zip's), and decodes a JPEG cut short without a word, its missing rows grey. Any flag but
    UNCHANGED turns phone photos upright by their EXIF orientation; ANYDEPTH keeps 16-bit PNGs' range.
    """
    from edge.datasets import jpeg_is_truncated

    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("%s: cannot read it (%s), skipped", path, exc.strerror or exc)
        return None
    if data[:2] == b"\xff\xd8" and jpeg_is_truncated(data):
        log.warning("%s: the JPEG is cut short, skipped", path)
        return None
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error:
        image = None
    if image is None:
        log.warning("%s: not a readable image, skipped", path)
    return image


class ImageFolderSource:
    """Every image in a folder (or one image file), in name order; unreadable files are skipped."""

    def __init__(self, path: str | Path, config: CameraConfig):
        self.path = Path(path)
        self.config = config
        self.name = str(path)
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        if self.path.is_file():
            self._files = [self.path]
        else:
            self._files = sorted(
                p
                for p in self.path.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")  # nor macOS's ._x.jpg
            )
        if not self._files:
            raise CameraError(f"{self.path}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self._next = 0
        log.info("%s: %d images", self.path, len(self._files))

    def read(self) -> np.ndarray | None:
        for _ in range(len(self._files) + 1):  # at most one lap: a folder of broken files must not spin
            if self._next >= len(self._files):
                if not (self.config.loop and self._files):
                    return None
                self._next = 0
            path = self._files[self._next]
            self._next += 1
            image = _read_image(path)
            if image is None:
                continue
            if image.dtype != np.uint8:
                image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
            return fit_within(as_bgr(image), self.config.width, self.config.height)
        raise CameraError(f"{self.path}: none of its images is readable")

    def close(self) -> None:
        self._files = []


class FrameListSource:
    """Frames already in memory (the demo sequence, tests, benchmarks): BGR, returned without copying."""

    def __init__(
        self,
        frames: Sequence[np.ndarray] | Callable[[], Sequence[np.ndarray]],
        name: str = "frames",
        loop: bool = False,
    ):
        self._frames_or_factory = frames
        self._frames: Sequence[np.ndarray] | None = None
        self.name = name
        self.loop = loop
        self._next = 0

    def open(self) -> None:
        frames = self._frames_or_factory
        self._frames = frames() if callable(frames) else frames
        self._next = 0

    def read(self) -> np.ndarray | None:
        if self._frames is None:  # opened on the first read, like RetryingSource
            self.open()
        if self._next >= len(self._frames):
            if not (self.loop and self._frames):
                return None
            self._next = 0
        frame = self._frames[self._next]
        self._next += 1
        return frame

    def close(self) -> None:
        self._frames = None


def _demo_frames() -> Sequence[np.ndarray]:
    # scikit-image's bundled photo with drawn masks; imported only for --demo
    from edge.synth.demo import demo_frames

    return demo_frames()  # rendered frame by frame when indexed


def open_source(spec: str, config: CameraConfig) -> FrameSource:
    """The source named by `camera.source` (or --source): not opened yet.

    "picamera2", "demo", a USB index ("0"), /dev/videoN, an rtsp:// or http:// URL, an image folder, an
    image file or a video file. A path that does not exist is a configuration error, not a lost camera.
    """
    spec = str(spec).strip()
    if spec == "picamera2":
        if importlib.util.find_spec("picamera2") is None:  # found without importing it: startup stays fast
            raise SourceConfigError(_PICAMERA2_MISSING)
        return Picamera2Source(config)
    if spec == "demo":
        return FrameListSource(_demo_frames, name="demo", loop=config.loop)
    if spec.isdigit():
        return VideoCaptureSource(int(spec), config)
    if "://" in spec or spec.startswith("/dev/video"):
        return VideoCaptureSource(spec, config)
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        return ImageFolderSource(path, config)
    if path.is_file():
        return VideoCaptureSource(str(path), config)
    raise SourceConfigError(
        f"camera.source: {spec!r} is not picamera2, demo, a camera index, a URL, or an existing file or folder"
    )


# --- wrappers -----------------------------------------------------------------------------------------


class RetryingSource:
    """Reopens a lost camera with exponential backoff; a lost camera is never fatal.

    `read()` raises CameraError while the camera is lost, but never blocks longer than `poll_s`, so the
    loop can show the fault pattern and keep the systemd watchdog fed between attempts. `wait` is the
    stop event's wait (returns True once stop is requested), so SIGTERM cuts a backoff short.
    """

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        initial_s: float = 1.0,
        max_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        poll_s: float = 1.0,
    ):
        self._factory = factory
        self.initial_s, self.max_s, self.poll_s = initial_s, max_s, poll_s
        self._clock = clock
        self._wait = wait or threading.Event().wait
        self._source: FrameSource | None = None
        self._delay = initial_s
        self._next_attempt = 0.0
        self.failures = 0  # consecutive failed opens or reads
        self.reconnects = 0
        self.name = "camera"

    def open(self) -> None:
        """First attempt; a camera that is not there yet is retried by `read()`, not raised."""
        try:
            self._try_open()
        except CameraError as exc:
            log.warning("%s; the alarm runs without frames until it comes", exc)

    def read(self) -> np.ndarray | None:
        if self._source is None:
            self._wait_for_attempt()
            self._try_open()
        try:
            frame = self._source.read()
        except Exception as exc:
            self._lost(exc)
            raise CameraError(f"{self.name}: lost ({exc})") from exc
        if self.failures:
            log.info("%s: frames again after %d failed attempts", self.name, self.failures)
            self.failures, self._delay = 0, self.initial_s
        return frame

    def full_frame(self) -> np.ndarray | None:
        """The last frame at full resolution where the source has one (picamera2), else None."""
        full_frame = getattr(self._source, "full_frame", None)
        return full_frame() if full_frame is not None else None

    def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()

    def _wait_for_attempt(self) -> None:
        remaining = self._next_attempt - self._clock()
        if remaining > 0:
            self._wait(min(remaining, self.poll_s))
            if self._next_attempt - self._clock() > 1e-6:
                raise CameraError(
                    f"{self.name}: lost; next attempt in {self._next_attempt - self._clock():.1f} s"
                )

    def _try_open(self) -> None:
        source = self._factory()
        self.name = getattr(source, "name", self.name)
        try:
            source.open()
        except SourceConfigError:
            raise
        except Exception as exc:
            try:
                source.close()
            except Exception:
                log.debug("closing a failed source raised", exc_info=True)
            self._lost(exc)
            raise CameraError(f"{self.name}: cannot open ({exc})") from exc
        if self.failures:
            self.reconnects += 1
        self._source = source

    def _lost(self, exc: Exception) -> None:
        try:
            self.close()
        except Exception:  # a wedged camera may fail to stop too: it is lost either way, and retried
            log.debug("closing the lost source raised", exc_info=True)
        self.failures += 1
        self._next_attempt = self._clock() + self._delay
        log.warning("%s: %s; retrying in %.1f s (attempt %d)", self.name, exc, self._delay, self.failures)
        self._delay = min(self._delay * 2.0, self.max_s)


class FramePacer:
    """The frame rate cap: `wait()` before each read returns when the next frame is due (0 fps = never waits).

    It sits in front of the source rather than inside it, so capture latency is measured without the
    sleep, and `wait` is the stop event's wait, so SIGTERM ends a sleep at once. A late frame never
    causes a burst: the next slot counts from now.
    """

    def __init__(
        self,
        fps: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] = time.sleep,
    ):
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._clock, self._wait = clock, wait
        self._due: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = self._clock()
        if self._due is not None and now < self._due:
            self._wait(self._due - now)
            now = self._due
        self._due = now + self.period


class MotionGate:
    """Says whether the scene changed since the last frame, from a 80x60 grey thumbnail (~0.1 ms).

    A still, empty entrance is most of the day; skipping detection there saves most of the CPU (and heat)
    without missing anyone: a person walking in is motion.
    """

    def __init__(self, threshold: float = 0.01, pixel_delta: int = 20, size: tuple[int, int] = (80, 60)):
        self.threshold = threshold
        self.pixel_delta = pixel_delta
        self.size = size
        self._previous: np.ndarray | None = None
        self._previous_shape: tuple[int, ...] | None = None

    def is_still(self, frame: np.ndarray) -> bool:
        """False for the first frame and for one of another size than the last (a camera back at another
        resolution): every thumbnail is `size`, so only the frames' own shapes tell that."""
        thumb = cv2.cvtColor(cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, thumb
        previous_shape, self._previous_shape = self._previous_shape, frame.shape
        if previous is None or previous_shape != frame.shape:
            return False
        changed = np.count_nonzero(cv2.absdiff(thumb, previous) > self.pixel_delta)
        return changed / thumb.size < self.threshold

    def reset(self) -> None:
        self._previous = self._previous_shape = None


def build_source(
    config: CameraConfig,
    spec: str | None = None,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RetryingSource:
    """The production source for `camera.source`: opened on demand and retried with backoff when lost."""
    spec = config.source if spec is None else spec
    open_source(spec, config)  # a wrong path or name fails now, at start, not on every retry
    return RetryingSource(
        lambda: open_source(spec, config),
        config.retry_initial_s,
        config.retry_max_s,
        clock=clock,
        wait=stop.wait if stop is not None else None,
    )


def iter_frames(source: FrameSource) -> Iterable[np.ndarray]:
    """All frames of a finite source (tools and tests)."""
    source.open()
    try:
        while (frame := source.read()) is not None:
            yield frame
    finally:
        source.close()
