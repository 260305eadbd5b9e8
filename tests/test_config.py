"""config.yaml documents every key, and the loader names the key path in every error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from edge.config import Config, ConfigError, describe_defaults, load_config, parse_config, replace

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def documented_keys(text: str) -> dict[str, str]:
    """{"section.key": comment} for every `  key: value  # comment` line of config.yaml."""
    keys, section = {}, None
    for line in text.splitlines():
        if match := re.match(r"^(\w+):\s*(#.*)?$", line):
            section = match.group(1)
        elif (match := re.match(r"^  (\w+):.*?#\s*(\S.*)$", line)) and section:
            keys[f"{section}.{match.group(1)}"] = match.group(2)
    return keys


def test_config_yaml_documents_every_key_with_a_comment():
    documented = documented_keys(REPO_CONFIG.read_text())
    missing = [key for key, _, _ in describe_defaults() if key not in documented]
    assert not missing, f"add these keys to config.yaml, each with a comment: {missing}"
    unknown = sorted(set(documented) - {key for key, _, _ in describe_defaults()})
    assert not unknown, f"config.yaml documents keys the loader does not know: {unknown}"


def test_config_yaml_parses_to_the_defaults():
    assert load_config(REPO_CONFIG) == Config()


def test_config_yaml_shows_each_default_value():
    data = yaml.safe_load(REPO_CONFIG.read_text())
    for key, default, _ in describe_defaults():
        section, name = key.split(".")
        assert data[section][name] == default, (
            f"config.yaml shows {key}: {data[section][name]!r}, default {default!r}"
        )


def test_no_file_means_the_defaults():
    assert load_config(None) == Config()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"alarm": {"buzzer_pin": 40}}, r"alarm\.buzzer_pin: 40 is out of range \[0, 27\]"),
        ({"alarm": {"buzer_pin": 18}}, r"alarm\.buzer_pin: unknown key \(did you mean alarm\.buzzer_pin\?\)"),
        ({"camera": {"fps_limit": "fast"}}, r"camera\.fps_limit: expected a number, got 'fast'"),
        ({"camera": {"loop": "yes"}}, r"camera\.loop: expected true or false"),
        (
            {"decision": {"violation_ratio": float("nan")}},  # YAML's .nan compares false with any bound
            r"decision\.violation_ratio: nan is out of range \[0\.05, 1\.0\]",
        ),
        (
            {"detector": {"strategy": "both"}},
            r"detector\.strategy: 'both' is not one of pyramid, dual, full_range, short_range",
        ),
        ({"decision": {"min_votes": 9, "vote_frames": 5}}, r"decision\.min_votes: 9 is out of range"),
        ({"decision": {"roi": [0.5, 0.5, 0.2, 0.9]}}, r"decision\.roi: expected \[x1, y1, x2, y2\]"),
        (
            {"alarm": {"led_pin": 18, "buzzer_pin": 18}},
            r"^alarm\.buzzer_pin: GPIO18 is alarm\.led_pin's pin too; each output needs its own pin$",
        ),
        (
            {"alarm": {"ok_led_pin": 17}},  # the default led_pin
            r"^alarm\.ok_led_pin: GPIO17 is alarm\.led_pin's pin too",
        ),
        ({"camera": {"retry_initial_s": 50, "retry_max_s": 10}}, r"camera\.retry_initial_s: must not exceed"),
        ({"camera": {"width": 1920}}, r"camera\.width: 1920 is out of range \[160, snapshot_width=1280\]"),
        (
            {"camera": {"height": 1080, "snapshot_height": 720}},
            r"camera\.height: 1080 is out of range \[120, snapshot_height=720\]",
        ),
        ({"cameras": {}}, r"cameras: unknown key \(did you mean camera\?\)"),
        ({"buzzer_pin": 18}, r"^buzzer_pin: unknown key \(did you mean alarm\.buzzer_pin\?\)$"),
        ({"buzer_pin": 18}, r"^buzer_pin: unknown key \(did you mean alarm\.buzzer_pin\?\)$"),
        ({"port": 8080}, r"^port: unknown key \(did you mean status\.port or mqtt\.port\?\)$"),
        (
            {"camera": {"buzzer_pin": 18}},
            r"camera\.buzzer_pin: unknown key \(did you mean alarm\.buzzer_pin\?\)",
        ),
        ({"frobnicate": 1}, r"^frobnicate: unknown key$"),
        (["camera"], r"config: expected a mapping"),
    ],
)
def test_errors_name_the_key_path_value_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("alarm:\n  led_pin: [\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: not valid YAML"):
        load_config(path)
    path.write_text("alarm:\n  led_pin: 99\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: alarm\.led_pin: 99 is out of range"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_a_file_saved_in_latin_1_is_a_config_error_naming_the_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("alarm:\n  led_pin: 17  # LED rouge, entrée\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: line 2 is not UTF-8 \(byte 0xe9\)"):
        load_config(path)


def test_usb_index_given_as_a_number_is_a_source_string_and_null_pins_mean_none():
    config = parse_config({"camera": {"source": 0}, "alarm": {"buzzer_pin": None}})
    assert config.camera.source == "0"
    assert config.alarm.buzzer_pin is None


def test_replace_validates_again():
    config = replace(Config(), camera={"source": "demo"})
    assert config.camera.source == "demo" and config.alarm == Config().alarm
    with pytest.raises(ConfigError, match=r"camera\.width"):
        replace(Config(), camera={"width": 5})


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "alarm:\n  led_pin: 22\ncamera:\n  loop: true\nalarm:\n  buzzer_type: tonal\n",
            r"config\.yaml: alarm: given twice \(lines 1 and 5\)",
        ),
        (
            "alarm:\n  led_pin: 22\n  ok_led_pin: 5\n  led_pin: 23\n",
            r"alarm\.led_pin: given twice \(lines 2 and 4\)",
        ),
    ],
)
def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path, text, message):
    # YAML keeps the last of two equal keys: a second `alarm:` appended to the file silently dropped
    # every key of the first one (its led_pin back to the default), with no word in the log.
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_text_keys_keep_digits_as_written(tmp_path):
    # YAML 1.1 reads 0123 as octal 83, 12:30 as 750 (base 60) and 1_000 as 1000: a password or token
    # of digits became another one, and the broker or the status page refused it without saying why.
    path = tmp_path / "config.yaml"
    path.write_text(
        "camera:\n  source: 0\n"
        "mqtt:\n  password: 0123\n  username: 12:30\n  node_id: 1.50\n"
        "status:\n  token: 1_000\n"
        "alarm:\n  led_pin: 22\n"
    )
    config = load_config(path)
    assert config.camera.source == "0"
    assert (config.mqtt.password, config.mqtt.username, config.mqtt.node_id) == ("0123", "12:30", "1.50")
    assert config.status.token == "1_000"
    # number keys read from the file are plain numbers again, not the text-keeping kind
    assert config.alarm.led_pin == 22 and type(config.alarm.led_pin) is int


def test_a_number_too_large_for_a_float_is_out_of_range_naming_the_key():
    with pytest.raises(ConfigError, match=r"^camera\.fps_limit: inf is out of range \[0\.0, 120\.0\]$"):
        parse_config({"camera": {"fps_limit": 10**400}})


@pytest.mark.parametrize("key", ["topic_prefix", "discovery_prefix"])
@pytest.mark.parametrize("value", ["site/+", "ha/#", "a\0b", ""])
def test_an_mqtt_prefix_that_cannot_start_a_topic_is_a_config_error_naming_the_key(key, value):
    """A wildcard in topic_prefix made the broker drop every connect in silence; in discovery_prefix the
    publisher thread retried the refused message forever at full CPU."""
    with pytest.raises(ConfigError, match=rf"mqtt\.{key}: .* cannot start an MQTT topic"):
        parse_config({"mqtt": {key: value}})
