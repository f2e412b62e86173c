# f5rl: `make demo` runs the embedded CPU demo, `make test` runs the test suite,
# `make demo-base` rebuilds the shipped demo base model (hours on a CPU; resumes where it stopped).
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# test processes (pytest-xdist): a module stays on one worker; the longest modules start first (tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: demo demo-base test lint bench bench-upstream app browser clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a bare `torch` requirement can pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,demo,rewards,app]'
	$(PY) -m pip install -q --no-deps 'resemblyzer>=0.1.3'
	touch $(STAMP)

# headless Chromium and its driver for the browser tests (Debian packages); without them those tests skip
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium could not be installed: the browser tests will skip"

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

lint: $(STAMP)
	$(PY) -m ruff check .

demo: $(STAMP)
	$(PY) -m f5rl.scripts.demo

demo-base: $(STAMP)
	$(PY) -m f5rl.scripts.demo_base

bench: $(STAMP)
	$(PY) benchmarks/bench_model.py --json benchmarks/results/bench_model.json

# f5rl against upstream F5-TTS from PyPI (installed once into benchmarks/.upstream), alternating processes
bench-upstream: $(STAMP)
	$(PY) benchmarks/bench_vs_upstream.py --json benchmarks/results/vs_upstream.json

# the listening page on the shipped demo base, offline, at http://127.0.0.1:7860
app: $(STAMP)
	$(PY) -m f5rl.app

clean-venv:
	rm -rf $(VENV)
