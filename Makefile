# Hearth: `make run` starts the app, `make test` runs every test.
# Both create .venv and install everything on first use (llama-cpp-python is
# built from source for this machine's backend: Metal, CUDA or CPU).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKEND := $(shell sh packaging/detect-backend.sh)
LLAMA_VERSION := 0.3.36

ifeq ($(BACKEND),metal)
  LLAMA_CMAKE_ARGS := -DGGML_METAL=on
  LLAMA_PIP_FLAGS := --no-cache-dir
else ifeq ($(BACKEND),cuda)
  LLAMA_CMAKE_ARGS := -DGGML_CUDA=on
  LLAMA_PIP_FLAGS := --no-cache-dir
else
  LLAMA_CMAKE_ARGS :=
  LLAMA_PIP_FLAGS :=
endif

APP_STAMP := $(VENV)/.hearth-app-$(BACKEND)
TEST_STAMP := $(VENV)/.hearth-test-$(BACKEND)

.PHONY: run test test-fast bench bench-quick bundle clean help screenshots

help:
	@echo "make run          install (first time) and start Hearth"
	@echo "make test         install (first time) and run every test"
	@echo "make bench        full benchmarks (writes bench-results.json)"
	@echo "make bench-quick  small-model benchmarks (< 5 min; the first run also builds llama-bench, ~8 min)"
	@echo "make bundle       build the Linux bundle under dist/"
	@echo "make screenshots  regenerate the README screenshots in assets/ (under Xvfb)"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
		{ echo "Hearth needs Python 3.10 or newer ($(PYTHON) is older)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.llama-$(BACKEND): | $(VENV)/bin/python
	@echo "Building llama-cpp-python $(LLAMA_VERSION) for the $(BACKEND) backend (a few minutes the first time)…"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install $(LLAMA_PIP_FLAGS) "llama-cpp-python==$(LLAMA_VERSION)"
	@rm -f $(VENV)/.llama-*
	touch $@

# Pyodide (CPython for WebAssembly, from npm) runs the python tool's sandbox.
PYODIDE := $(VENV)/pyodide/.hearth-pyodide.json
$(PYODIDE): | $(VENV)/bin/python
	$(PY) packaging/fetch_pyodide.py $(VENV)/pyodide

$(APP_STAMP): pyproject.toml $(VENV)/.llama-$(BACKEND) $(PYODIDE)
	$(PY) -m pip install --quiet -e .
	touch $@

TEMPLATE := $(VENV)/gpt-oss-template.jinja

$(TEST_STAMP): pyproject.toml $(APP_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The official gpt-oss chat template, from the pinned llama-cpp-python sdist: the
# harmony renderer's tests compare against it byte for byte (never copied into Hearth).
$(TEMPLATE): | $(VENV)/bin/python
	$(PY) -m pip download --quiet --no-deps --no-binary :all: -d $(VENV)/sdist "llama-cpp-python==$(LLAMA_VERSION)"
	$(PY) -c "import sys, tarfile; t = tarfile.open(sys.argv[1]); m = [n for n in t.getnames() if n.endswith('models/templates/openai-gpt-oss-120b.jinja')][0]; open(sys.argv[2], 'wb').write(t.extractfile(m).read())" $(VENV)/sdist/llama_cpp_python-$(LLAMA_VERSION).tar.gz $@

run: $(APP_STAMP)
	$(VENV)/bin/hearth

test: $(TEST_STAMP) $(TEMPLATE)
	QT_QPA_PLATFORM=offscreen HEARTH_GPT_OSS_TEMPLATE=$(abspath $(TEMPLATE)) $(PY) -m pytest -q $(PYTEST_ARGS)

# README pictures: real X captures of the window (the script starts its own Xvfb when DISPLAY is unset).
screenshots: $(TEST_STAMP)
	env -u QT_QPA_PLATFORM $(PY) -m tests.support.screenshots --out assets

bench: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m tests.bench.run --full

bench-quick: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m tests.bench.run --quick

# The bundle ships llama.cpp built without -march=native, with ggml's CPU backend
# compiled for every x86-64 level and picked at run time (packaging/README.md).
# That build takes long and is made once, into build/portable-llama.
PORTABLE_LLAMA := build/portable-llama
LLAMA_SDIST := $(VENV)/sdist/llama_cpp_python-$(LLAMA_VERSION).tar.gz
BUNDLE_ENV := HEARTH_LLAMA_LIBS=$(abspath $(PORTABLE_LLAMA)) HEARTH_ICONS=$(abspath build/icons) \
	PYINSTALLER_CONFIG_DIR=$(abspath build/pyinstaller-config)
ifeq ($(shell uname -s),Darwin)
  BUNDLE_PACKAGE := sh packaging/macos/make_dmg.sh dist/Hearth.app dist/Hearth-macos-$(shell uname -m).dmg
else
  BUNDLE_PACKAGE := sh packaging/linux/make_tarball.sh dist/hearth dist/hearth-linux-$(shell uname -m).tar.gz
endif

$(PORTABLE_LLAMA)/manifest.json: | $(APP_STAMP)
	@echo "Building portable llama.cpp libraries for the bundle (long: once per CPU level)…"
	$(PY) packaging/portable_llama.py --out $(PORTABLE_LLAMA) --version $(LLAMA_VERSION) --sdist $(LLAMA_SDIST)

bundle: $(APP_STAMP) $(PORTABLE_LLAMA)/manifest.json
	@$(PY) -c "import PyInstaller" 2>/dev/null || $(PY) -m pip install --quiet "pyinstaller>=6.10,<7"
	$(PY) packaging/make_icons.py --out build/icons
	$(BUNDLE_ENV) $(PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist \
		--workpath build/pyinstaller packaging/hearth.spec
	$(BUNDLE_PACKAGE)

clean:
	rm -rf build dist *.egg-info
