# The two commands of the README:
#   make run    install the slim runtime (numpy, onnxruntime, typer), answer examples/queries.txt
#               and check the answers with exact arithmetic (--verify, on stderr)
#   make test   install everything (train, dev, ray and openvino extras), then lint and run the tests
# and, while editing:
#   make check  ruff, then every test but those that train, export, evaluate at full size,
#               start Ray or build the wheel (pytest -m "not slow": markers in pyproject.toml)
# Both create their own virtual environment on first use and are idempotent after that.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
DEV_VENV := .venv
RUN_VENV := .venv-run
PIP_FLAGS := --disable-pip-version-check --quiet
RUNTIME_SOURCES := $(shell find runtime -name '*.py' -o -name '*.onnx') pyproject.toml constraints.txt

.PHONY: run test check lint slim-check arm64-check constraints clean web web-check

run: $(RUN_VENV)/.installed
	$(RUN_VENV)/bin/seqadd-run --file examples/queries.txt --verify

test: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/python -m pytest -q --ignore=tests/test_web.py

check: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .
	$(DEV_VENV)/bin/python -m pytest -q -m "not slow" --ignore=tests/test_web.py

lint: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .

# The runtime alone, installed the way users install it (not editable), so the shipped models
# travel as package data exactly as they do for them.
$(RUN_VENV)/.installed: $(RUNTIME_SOURCES)
	test -x $(RUN_VENV)/bin/python || $(PYTHON) -m venv $(RUN_VENV)
	$(RUN_VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt .
	touch $@

$(DEV_VENV)/.installed: pyproject.toml constraints.txt
	test -x $(DEV_VENV)/bin/python || $(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt -e ".[train,dev,ray,openvino]"
	touch $@

# One wheel, installed alone on every CPython 3.10-3.13 found here (pinned, lowest and newest
# dependencies), used from outside the repository with the runtime's tests: see .ci/slim-check.
slim-check:
	bash .ci/slim-check

# The same wheel on arm64 Debian 12 under qemu-user emulation (Cortex-A72 and A76): the
# answers must match x86_64's. Needs root; see .ci/arm64-check.
arm64-check:
	bash .ci/arm64-check


# The web page (web/): onnxruntime-web from npm (pinned by web/package-lock.json), served on
# 127.0.0.1 with the cross-origin isolation headers (see docs/web.md).
WEB_PORT ?= 8022
CHROMIUM ?= chromium

web: web/node_modules/.installed
	$(PYTHON) web/serve.py --port $(WEB_PORT)

# puppeteer-core never downloads a browser; the tests drive Debian's chromium.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The page in headless Chromium against the Python runtime, and the codec in Node. Installs
# Chromium with apt when missing (the test skips, saying so, where it cannot be installed).
web-check: $(DEV_VENV)/.installed web/node_modules/.installed
	@command -v $(CHROMIUM) >/dev/null || { \
	  echo "make web-check: installing chromium with apt-get"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "make web-check: NOTICE: chromium could not be installed; the browser test will be skipped"; }
	$(DEV_VENV)/bin/python -m pytest -q -rs tests/test_web.py

# Pin the exact set installed in the dev environment (after changing pyproject's ranges).
constraints: $(DEV_VENV)/.installed
	{ echo "# Exact versions that CI and the Makefile install (pip install -c constraints.txt ...)."; \
	  echo "# Verified together on Python 3.11, x86_64, 2 CPU cores. Regenerate with: make constraints"; \
	  $(DEV_VENV)/bin/pip freeze --exclude-editable | grep -v '^seqadd\|^#'; } > constraints.txt

clean:
	rm -rf $(DEV_VENV) $(RUN_VENV) web/node_modules build *.egg-info .pytest_cache .ruff_cache
