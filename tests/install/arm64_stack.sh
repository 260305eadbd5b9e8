#!/usr/bin/env bash
# edge's tests on a Raspberry Pi's processor and Python stack, emulated on an x86 machine.
#
# usage: tests/install/arm64_stack.sh [PYTEST ARGS...]       (default: the model and pipeline tests)
#        QEMU_CPU=cortex-a76 tests/install/arm64_stack.sh     (a Pi 5's core; the default is a Pi 4's A72)
#
# The Pi runs arm64 builds of everything numeric: apt's numpy 1.24 and OpenCV 4.6, and LiteRT's aarch64
# wheel, whose int8 kernels (XNNPACK's NEON paths) are not the x86 ones `make test-pi-stack` runs. This
# builds that stack from Debian Bookworm's arm64 packages (Raspberry Pi OS takes numpy and OpenCV from
# them) and the aarch64 wheels of requirements/test-pi-stack.txt, then runs pytest under qemu-user
# emulating the Pi's core. Not a timing: emulation is 20-50 times slower than a Pi. Not in CI for that
# reason (the model tests alone take minutes); run it after changing the model, the runtime or a pin.
#
# Two things emulation needs that a Pi has: the alternatives links apt's postinst would make for BLAS
# and LAPACK, and an ARM /proc/cpuinfo (qemu-user shows the host's x86 one, and LiteRT's CPU detection
# crashes on it). qemu's default `max` core is not a Pi: its extra instructions gave the int8 model other
# answers under qemu 7.2 than x86, a Cortex-A72 and a Cortex-A76 do. The alarm's tests are left out of
# the default set: they wait on gpiozero's pattern threads in real time, which emulation slows past
# their sleeps, and nothing in them depends on the processor.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${MASKWATCH_ARM64_DIR:-/var/cache/maskwatch-arm64}
root=$work/root
site=$work/site
export QEMU_CPU=${QEMU_CPU:-cortex-a72}

command -v qemu-aarch64-static >/dev/null || apt-get install -y -q qemu-user-static

if [[ ! -x $root/usr/bin/python3.11 ]]; then
    echo "arm64_stack: Debian Bookworm arm64 python3, numpy, OpenCV (apt) into $root"
    mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/state"
    : >"$work/state/status" # nothing installed: apt resolves the whole closure
    apt_arm64=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Debug::NoLocking=1
        -o Dir::State::Lists="$work/lists" -o Dir::State::status="$work/state/status"
        -o Dir::Cache::Archives="$work/archives")
    apt-get "${apt_arm64[@]}" update -q
    apt-get "${apt_arm64[@]}" install -y -q --download-only python3 python3-numpy python3-opencv python3-yaml
    rm -rf "$root.tmp" && mkdir -p "$root.tmp"
    for deb in "$work"/archives/*.deb; do dpkg -x "$deb" "$root.tmp"; done
    ln -sf blas/libblas.so.3 "$root.tmp/usr/lib/aarch64-linux-gnu/libblas.so.3"
    ln -sf lapack/liblapack.so.3 "$root.tmp/usr/lib/aarch64-linux-gnu/liblapack.so.3"
    mkdir -p "$root.tmp/proc"
    for core in 0 1 2 3; do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$core"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done >"$root.tmp/proc/cpuinfo"
    printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >>"$root.tmp/proc/cpuinfo"
    mv "$root.tmp" "$root"
fi

if [[ ! -d $site ]]; then
    echo "arm64_stack: aarch64 wheels of requirements/test-pi-stack.txt into $site"
    platforms=(--platform manylinux2014_aarch64)
    for n in 17 24 26 27 28 29 31 34 35 36; do platforms+=(--platform "manylinux_2_${n}_aarch64"); done
    rm -rf "$work/wheels" && mkdir -p "$work/wheels"
    python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
        "${platforms[@]}" -d "$work/wheels" \
        -r "$repo/requirements/test-pi-stack.txt" -c "$repo/constraints/bookworm-apt.txt"
    rm -rf "$site.tmp" && mkdir -p "$site.tmp"
    for wheel in "$work"/wheels/*.whl; do
        case $(basename "$wheel") in
        numpy-* | opencv_python*) ;; # apt's, as on the Pi
        *) python3 -m zipfile -e "$wheel" "$site.tmp" ;;
        esac
    done
    mv "$site.tmp" "$site"
fi

if [[ $# -eq 0 ]]; then
    set -- tests/test_runtime.py tests/test_classifier.py tests/test_faces.py tests/test_verifier.py \
        tests/test_box_refine.py tests/test_photo_tiles.py tests/test_detect_command.py tests/test_loop.py \
        tests/test_demo.py tests/test_evaluate.py
fi
cd "$repo"
run() {
    PYTHONPATH="$site:$repo" GPIOZERO_PIN_FACTORY=mock MASKWATCH_TEST_RUNTIME=ai_edge_litert \
        qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" "$@"
}
run -c "import platform, numpy, cv2; print('arm64_stack:', platform.machine(), '$QEMU_CPU', 'numpy', numpy.__version__, 'OpenCV', cv2.__version__)"
# A test that starts a child Python (sys.executable, an arm64 binary) needs binfmt_misc to run it, which a
# container seldom has: left out here, it runs in `make test-pi-stack`.
run -m pytest -q -ra -p no:cacheprovider -m 'not hardware and not workstation' \
    --deselect tests/test_detect_command.py::test_file_names_that_are_not_utf8_are_read_and_drawn "$@"
