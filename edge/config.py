"""Typed, validated configuration with every default in one place.

config.yaml is the only thing users edit, so a mistake in it must say which key, what value, and what is
allowed, and must never start a half-configured alarm. Each section is a frozen dataclass whose fields
carry their bounds; `load_config` rejects unknown keys (suggesting the near one), keys given twice and
out-of-range values, naming the key path (`alarm.buzzer_pin`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key path."""


def _opt(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None, choices=None):
    """A config field with its default, a description and its bounds (inclusive)."""
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi, "choices": choices})


def _list_opt(default_factory, doc: str, **bounds):
    return field(default_factory=default_factory, metadata={"doc": doc, **bounds})


@dataclass(frozen=True)
class CameraConfig:
    source: str = _opt(
        "picamera2",
        "picamera2 | USB index ('0') | video file | rtsp:// URL | image folder | 'demo'",
    )
    width: int = _opt(640, "analysis frame width in pixels (picamera2: <= snapshot_width)", lo=160, hi=1920)
    height: int = _opt(
        480, "analysis frame height in pixels (picamera2: <= snapshot_height)", lo=120, hi=1080
    )
    snapshot_width: int = _opt(1280, "picamera2: violation snapshots' width (main stream)", lo=320, hi=4056)
    snapshot_height: int = _opt(960, "picamera2: violation snapshots' height (main stream)", lo=240, hi=3040)
    fps_limit: float = _opt(15.0, "frame rate cap; 0 = as fast as frames come", lo=0.0, hi=120.0)
    loop: bool = _opt(False, "replay a video file or image folder when it ends")
    retry_initial_s: float = _opt(1.0, "first wait before reopening a lost camera", lo=0.1, hi=60.0)
    retry_max_s: float = _opt(30.0, "longest wait between reopen attempts", lo=1.0, hi=600.0)
    motion_gate: bool = _opt(False, "skip face detection while the scene is still")
    motion_threshold: float = _opt(0.01, "fraction of changed pixels that counts as motion", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class DetectorConfig:
    strategy: str = _opt(
        "pyramid",
        "pyramid = short-range at two input sizes (docs/detector.md); dual = full- and short-range once each",
        choices=("pyramid", "dual", "full_range", "short_range"),
    )
    score_threshold: float = _opt(0.5, "minimum face score (the whole-frame passes)", lo=0.05, hi=0.99)
    fine_score_threshold: float = _opt(0.6, "minimum face score in the pyramid's fine pass", lo=0.05, hi=0.99)
    fine_size: int = _opt(
        320,
        "long side of the pyramid's fine pass in px: larger finds smaller faces, costs more",
        lo=128,
        hi=640,
    )
    fine_every: int = _opt(
        3,
        "in a video stream the fine pass searches the whole frame on every Nth frame, and between those "
        "only around the small faces already found; 1 = the whole frame on every frame",
        lo=1,
        hi=10,
    )
    verifier: bool = _opt(
        True,
        "check candidates scoring between verifier_floor and the pass threshold with the face verifier "
        "(models/face_verifier.tflite) and keep those it calls faces: masked faces score low",
    )
    verifier_floor: float = _opt(
        0.3, "lowest detector score a candidate may have to be checked by the face verifier", lo=0.05, hi=0.99
    )
    verifier_veto_below: float = _opt(
        0.7,
        "faces the pass thresholds keep but that score below this are shown to the face verifier too, and "
        "dropped when it is sure they are no face (probability under 0.1); 0 = never",
        lo=0.0,
        hi=0.99,
    )
    nms_iou: float = _opt(0.3, "IoU above which boxes are merged", lo=0.05, hi=0.95)
    box_refinement: bool = _opt(
        True,
        "move each face box, from its keypoints, to where the annotators of the VOC scenes draw it "
        "(models/box_refinement.json): lower and taller; false = BlazeFace's own boxes",
    )
    photo_tiles: bool = _opt(
        True,
        "photos (detect, evaluate) over 960 px long are also searched as overlapping 640x480 tiles at full "
        "resolution, so small faces in large photos are found; the camera stream never is",
    )
    threads: int = _opt(2, "TFLite threads for the detector", lo=1, hi=8)


@dataclass(frozen=True)
class ClassifierConfig:
    model: str = _opt("", "int8 classifier .tflite; empty = the shipped models/mask_classifier.tflite")
    threads: int = _opt(2, "TFLite threads for the classifier", lo=1, hi=8)


@dataclass(frozen=True)
class DecisionConfig:
    min_face_px: int = _opt(32, "ignore faces whose box is shorter than this", lo=8, hi=1000)
    vote_frames: int = _opt(5, "frames of one person voted over", lo=1, hi=60)
    min_votes: int = _opt(3, "frames needed before a person is decided", lo=1, hi=60)
    violation_ratio: float = _opt(0.6, "share of votes that must be violations to alarm", lo=0.05, hi=1.0)
    uncertain_band: float = _opt(
        0.15, "a frame whose top score is below 0.5 + this counts as no vote", lo=0.0, hi=0.49
    )
    cooldown_s: float = _opt(
        30.0, "after an alarm, the same person does not alarm again for this long", lo=0.0, hi=3600.0
    )
    reclassify_every: int = _opt(
        3,
        "a person already decided, whose latest vote agrees, is classified on every Nth frame only "
        "(others on every frame); 1 = every face on every frame",
        lo=1,
        hi=30,
    )
    track_iou: float = _opt(0.3, "IoU that links a face to an existing track", lo=0.05, hi=0.95)
    track_timeout_s: float = _opt(2.0, "a track not seen for this long is forgotten", lo=0.1, hi=60.0)
    edge_margin_px: int = _opt(
        4, "faces this close to the frame edge are cut off and ignored; 0 = keep", lo=0, hi=200
    )
    still_face_s: float = _opt(
        60.0,
        "a face that stays put (within a tenth of its height) this long is taken for a picture, poster or "
        "lamp and ignored until it moves; 0 = never",
        lo=0.0,
        hi=86400.0,
    )
    roi: list[float] = _list_opt(
        list,
        "optional region of interest [x1, y1, x2, y2] as fractions of the frame: faces centred outside it "
        "are ignored, and the detector looks for small faces only inside it (plus a margin); [] = whole frame",
        lo=0.0,
        hi=1.0,
    )


@dataclass(frozen=True)
class AlarmConfig:
    led_pin: int | None = _opt(17, "BCM pin of the red alarm LED; null = none", lo=0, hi=27)
    ok_led_pin: int | None = _opt(None, "BCM pin of an optional green 'ok' LED; null = none", lo=0, hi=27)
    buzzer_pin: int | None = _opt(18, "BCM pin of the buzzer; null = none", lo=0, hi=27)
    buzzer_type: str = _opt("active", "active Buzzer or passive TonalBuzzer", choices=("active", "tonal"))
    active_high: bool = _opt(
        True,
        "the LEDs and an active buzzer are on when their pin is high; false = when low "
        "(a tonal buzzer ignores it: its pin plays a square wave and is low while silent)",
    )
    duration_s: float = _opt(3.0, "how long one alarm pattern plays", lo=0.2, hi=60.0)


@dataclass(frozen=True)
class StatusConfig:
    port: int = _opt(0, "status page port; 0 = off", lo=0, hi=65535)
    host: str = _opt("127.0.0.1", "address the status page binds to")
    token: str = _opt("", "required for any non-loopback bind; sent as ?token= or a Bearer header")
    preview_fps: float = _opt(
        5.0, "live view frame rate cap; encoded only while someone watches", lo=0.5, hi=30.0
    )
    preview_quality: int = _opt(70, "live view JPEG quality", lo=10, hi=95)
    stale_s: float = _opt(5.0, "/healthz turns 503 when no frame came for this long", lo=0.5, hi=600.0)


@dataclass(frozen=True)
class EventsConfig:
    state_dir: str = _opt(
        "", "events, counts and snapshots; empty = $MASKWATCH_STATE_DIR or /var/lib/maskwatch"
    )
    log_max_mb: float = _opt(10.0, "rotate the events log at this size", lo=0.1, hi=1000.0)
    log_keep: int = _opt(5, "rotated event logs kept", lo=1, hi=100)
    snapshots: bool = _opt(False, "save the best frame of each violation (privacy: off by default)")
    blur_other_faces: bool = _opt(True, "blur faces other than the violator's in snapshots")
    snapshot_keep_days: float = _opt(7.0, "delete snapshots older than this", lo=0.0, hi=3650.0)
    snapshot_max_mb: float = _opt(200.0, "delete the oldest snapshots above this total", lo=1.0, hi=100000.0)
    capture_crops: int = _opt(0, "save up to this many face crops for retraining; 0 = off", lo=0, hi=100000)


@dataclass(frozen=True)
class MqttConfig:
    host: str = _opt("", "MQTT broker host; empty = MQTT off")
    port: int = _opt(1883, "MQTT broker port", lo=1, hi=65535)
    username: str = _opt("", "MQTT user name")
    password: str = _opt("", "MQTT password")
    topic_prefix: str = _opt("maskwatch", "topics start with this")
    discovery_prefix: str = _opt("homeassistant", "Home Assistant MQTT discovery prefix")
    node_id: str = _opt("", "device id in topics and Home Assistant; empty = this machine's host name")
    violation_hold_s: float = _opt(
        5.0, "'violation now' stays on this long after the last violation seen", lo=0.0, hi=600.0
    )


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    stats_interval_s: float = _opt(60.0, "seconds between stats lines", lo=1.0, hi=3600.0)


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    alarm: AlarmConfig = field(default_factory=AlarmConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_scalar(path: str, value: Any, tp, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_scalar(path, value, inner, meta)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_check_scalar(f"{path}[{i}]", v, inner, meta) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected a whole number, got {value!r}")
        value = int(value)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        value = _as_float(value)
    elif tp is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = getattr(value, "text", str(value))  # `source: 0` means USB camera 0; `0123` stays
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected text, got {value!r}")
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, choices))}")
    if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):  # NaN fails both
        raise ConfigError(f"{path}: {value!r} is out of range [{lo}, {hi}]")
    return value


def _as_float(value: int | float) -> float:
    """A whole number too large for a float (300 digits) is infinite, so the range check names the key."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _build(cls, data: Any, path: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            near = _suggestions(str(key), fields, path)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            raise ConfigError(f"{'.'.join(filter(None, [path, str(key)]))}: unknown key{hint}")
    values = {}
    for name, f in fields.items():
        key_path = ".".join(filter(None, [path, name]))
        if name not in data:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, data[name], key_path)
        else:
            values[name] = _check_scalar(key_path, data[name], tp, f.metadata)
    config = cls(**values)
    _check_cross_fields(config, path)
    return config


def _suggestions(key: str, fields: typing.Iterable[str], path: str) -> list[str]:
    """The key path meant by an unknown `key` at `path`: a near name at the same level, else a key of that
    name (or a near one) in another section, e.g. `buzzer_pin` at the top level -> `alarm.buzzer_pin`."""
    near = difflib.get_close_matches(key, list(fields), n=1)
    if near:
        return [".".join(filter(None, [path, near[0]]))]
    elsewhere = {}  # key name -> its paths, in every section but this one
    for section in dataclasses.fields(Config):
        if section.name != path:
            for f in dataclasses.fields(section.default_factory()):
                elsewhere.setdefault(f.name, []).append(f"{section.name}.{f.name}")
    names = [key] if key in elsewhere else difflib.get_close_matches(key, list(elsewhere), n=1)
    return [key_path for name in names for key_path in elsewhere[name]]


def _check_cross_fields(section: Any, path: str) -> None:
    if isinstance(section, DecisionConfig):
        if section.min_votes > section.vote_frames:
            raise ConfigError(
                f"{path}.min_votes: {section.min_votes} is out of range [1, vote_frames={section.vote_frames}]"
            )
        if section.roi:
            x1, y1, x2, y2 = (section.roi + [None] * 4)[:4] if len(section.roi) == 4 else (None,) * 4
            if x1 is None or not (x1 < x2 and y1 < y2):
                raise ConfigError(
                    f"{path}.roi: expected [x1, y1, x2, y2] with x1 < x2 and y1 < y2, got {section.roi}"
                )
    if isinstance(section, MqttConfig):
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(section, key)
            # a broker drops every connect whose last will has such a topic, and paho refuses to publish
            if not value or any(c in value for c in "+#\0"):
                raise ConfigError(
                    f"{path}.{key}: {value!r} cannot start an MQTT topic (empty, or with '+', '#' or NUL); "
                    f"use words separated by '/', e.g. {MqttConfig.__dataclass_fields__[key].default!r}"
                )
    if isinstance(section, CameraConfig) and section.retry_initial_s > section.retry_max_s:
        raise ConfigError(
            f"{path}.retry_initial_s: must not exceed camera.retry_max_s ({section.retry_max_s})"
        )
    if isinstance(section, CameraConfig) and section.source == "picamera2":
        # picamera2 refuses a lores (analysis) stream larger than its main stream: at start, where it
        # would look like a camera that is not there and be retried forever
        lowest = {f.name: f.metadata.get("lo") for f in dataclasses.fields(CameraConfig)}
        for side in ("width", "height"):
            value, snapshot = getattr(section, side), getattr(section, f"snapshot_{side}")
            if value > snapshot:
                raise ConfigError(
                    f"{path}.{side}: {value} is out of range [{lowest[side]}, snapshot_{side}={snapshot}] "
                    "(picamera2's analysis stream cannot be larger than its snapshot stream)"
                )
    if isinstance(section, AlarmConfig):
        owner: dict[int, str] = {}
        for key in ("led_pin", "ok_led_pin", "buzzer_pin"):
            pin = getattr(section, key)
            if pin is None:
                continue
            if pin in owner:
                raise ConfigError(
                    f"{path}.{key}: GPIO{pin} is {path}.{owner[pin]}'s pin too; each output needs its own pin"
                )
            owner[pin] = key


def parse_config(data: Any) -> Config:
    return _build(Config, data, "")


def parse_alarm_section(data: Any) -> AlarmConfig:
    """The `alarm` section alone: the pins can be known when another section of the file is wrong."""
    return _build(AlarmConfig, data, "alarm")


def load_sections_alone(
    path: str | os.PathLike, names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, ConfigError]]:
    """The named sections of a file that does not load whole, each validated on its own, and the errors
    of those that are wrong too: a section that is fine is known (the alarm's pins, the state folder)
    although another one has a typo. A file that is no YAML mapping gives no section; OSError,
    UnicodeDecodeError and yaml.YAMLError rise."""
    data = _read_yaml(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return {}, {}
    hints = typing.get_type_hints(Config)
    sections, errors = {}, {}
    for name in names:
        try:
            sections[name] = _build(hints[name], data.get(name), name)
        except ConfigError as exc:
            errors[name] = exc
    return sections, errors


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def load_config(path: str | os.PathLike | None) -> Config:
    """Load and validate a YAML file; None gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # an editor that saved Latin-1: say where, as for any other error
        line = _line_of(path.read_bytes(), exc.start)
        raise ConfigError(f"{path}: line {line} is not UTF-8 (byte 0x{exc.object[exc.start]:02x})") from exc
    try:
        return parse_config(_read_yaml(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


class _Int(int):
    """A whole number from the file that keeps its text: YAML 1.1 reads `password: 0123` as 83."""

    text = ""


class _Float(float):
    """A number with a point from the file that keeps its text (`node_id: 1.50` is not "1.5")."""

    text = ""


def _keeping_text(kind, construct):
    """A YAML constructor for `kind` (_Int, _Float) that builds the number as usual, then adds its text."""

    def constructor(loader, node):
        number = kind(construct(loader, node))
        number.text = node.value
        return number

    return constructor


class _Loader(yaml.SafeLoader):
    """safe_load whose numbers keep the text they were written as, for the keys that take text."""


_Loader.add_constructor("tag:yaml.org,2002:int", _keeping_text(_Int, yaml.SafeLoader.construct_yaml_int))
_Loader.add_constructor(
    "tag:yaml.org,2002:float", _keeping_text(_Float, yaml.SafeLoader.construct_yaml_float)
)


def _read_yaml(text: str) -> Any:
    """The YAML document in `text`, its numbers keeping their text, refusing a key given twice."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_repeated_keys(node, "", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_repeated_keys(node: yaml.Node, path: str, seen: set[int]) -> None:
    """YAML keeps the last of two equal keys without a word: a second `alarm:` appended to the file
    silently reset every key of the first one. Both lines are named so that the user can keep one."""
    if id(node) in seen:  # an alias: already checked where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_repeated_keys(item, f"{path}[{i}]", seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None  # else not a config key
            key_path = ".".join(filter(None, [path, str(key)]))
            if key is not None:
                line = key_node.start_mark.line + 1
                if key in lines:
                    raise ConfigError(f"{key_path}: given twice (lines {lines[key]} and {line}): keep one")
                lines[key] = line
            _refuse_repeated_keys(value_node, key_path, seen)


def replace(config: Config, **sections: dict) -> Config:
    """A copy of `config` with some keys changed, validated again: `replace(c, camera={"source": "x"})`."""
    data = dataclasses.asdict(config)
    for name, updates in sections.items():
        data[name].update(updates)
    return parse_config(data)


def describe_defaults() -> list[tuple[str, Any, str]]:
    """(key path, default, description) for every key: used to keep config.yaml's comments complete."""
    rows = []
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((f"{section.name}.{f.name}", default, f.metadata.get("doc", "")))
    return rows
