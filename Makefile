# Set-up, demo, tests and packaging. Every target is idempotent and installs only what is missing.
SHELL := /bin/bash
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis python3-rasterio python3-skimage python3-scipy python3-matplotlib xvfb xauth
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.stf-setup-done
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" for torch's CPU build.
PIP_ARGS ?=
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup apt-packages demo test bench bench-gpu clean package deploy e2e

setup: apt-packages $(STAMP)

apt-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# The venv sees Debian's numpy, GDAL, rasterio and QGIS; the constraint keeps pip from replacing numpy.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	@$(PY) -c "import numpy; print('numpy==' + numpy.__version__)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q $(PIP_ARGS) -c $(VENV)/constraints.txt torch==2.13.0 tqdm pytest pytest-qgis==2.1.0
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

demo: setup
	$(PY) -m stf_engine.cli.demo resources/sample out/demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py --out bench/results.md

# The GPU section alone (a CUDA build of torch and a GPU): its table goes into bench/results.md by hand.
bench-gpu: setup
	$(PY) bench/run.py --only bench_gpu --out bench/results-gpu.md

# QGIS plugin: the zip (plugin + bundled engine), installing it into a profile, and the real-desktop run.
QGIS_PLUGINS_DIR ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default/python/plugins

package: setup
	$(PY) -m stf_qgis_plugin.packaging build --out dist

deploy: setup
	$(PY) -m stf_qgis_plugin.packaging install --out dist --plugins-dir "$(QGIS_PLUGINS_DIR)"

e2e: setup
	$(PY) tests/plugin/e2e/run_e2e.py --out out/e2e

clean:
	rm -rf out dist build *.egg-info .pytest_cache
