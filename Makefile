# pgfast developer and CI entry points. Every target sets up what it needs.
#   make test    fresh venv + CPU torch + pgfast[test] + pytest (strict) + bench smoke run
#   make demo    fresh venv + the short study (CartPole-v1, PPO vs VPG, 3 seeds) + plot
#   make bench   benchmarks, saved for regression tracking (--benchmark-autosave)
#   make bench-compare   latest saved run vs the previous one; fails on a >20% mean regression
#   make dev     editable install into .venv
#   make inplace rebuild pgfast/_C*.so in the source tree (for development)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_CPU ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
EXTRAS ?= test,bench,mujoco,cli,ray
STAMP := $(VENV)/.pgfast-installed
SOURCES := pyproject.toml CMakeLists.txt $(shell find csrc pgfast -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.typed' \) 2>/dev/null)
BENCH_PYTEST := cd bench && ../$(PY) -m pytest -c ../pyproject.toml --rootdir .. -o testpaths=bench \
	  -o python_files='bench_*.py' -p no:cacheprovider
BENCH_REGRESSION ?= mean:20%
RUNS ?= runs

.PHONY: dev venv install test test-fast test-slow bench-smoke bench bench-compare demo inplace clean

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

# Torch: a CPU build is installed first where no torch is present, so the
# `torch>=2.2` requirement is already met and pip never pulls a CUDA build.
install: $(STAMP)

$(STAMP): $(PY) $(SOURCES)
	@$(PY) -c "import torch" 2>/dev/null || \
	  $(PIP) install "$(TORCH_CPU)" || \
	  $(PIP) install --index-url "$(TORCH_CPU_INDEX)" "torch>=2.2"
	$(PIP) install ".[$(EXTRAS)]"
	@touch $(STAMP)

# Tests import the installed wheel (import-mode=importlib keeps the source
# tree off sys.path), so they exercise the built pgfast._C.
test: install
	cd tests && ../$(PY) -m pytest -c ../pyproject.toml --rootdir .. .. $(PYTEST_ARGS)
	$(BENCH_PYTEST) --benchmark-disable -q ../bench

test-fast: install
	cd tests && ../$(PY) -m pytest -c ../pyproject.toml --rootdir .. .. -m "not slow" $(PYTEST_ARGS)

bench-smoke: install
	$(BENCH_PYTEST) --benchmark-disable -q ../bench

bench: install
	$(BENCH_PYTEST) --benchmark-autosave \
	  --benchmark-storage=file://../.benchmarks --benchmark-columns=mean,stddev,rounds \
	  -q ../bench $(BENCH_ARGS)

bench-compare: install
	$(BENCH_PYTEST) --benchmark-autosave \
	  --benchmark-storage=file://../.benchmarks --benchmark-compare \
	  --benchmark-compare-fail=$(BENCH_REGRESSION) -q ../bench $(BENCH_ARGS)

demo: install
	$(VENV)/bin/pgfast experiment ppo-vs-vpg --envs CartPole-v1 --seeds 0 1 2 --workers 2 \
	  --total-timesteps 100000 --out $(RUNS)/demo

# Editable install (Python edits are live; C++ edits need `make dev` again).
dev: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_CPU)"
	$(PIP) install scikit-build-core pybind11 ninja cmake
	$(PIP) install --no-build-isolation -e ".[$(EXTRAS)]"

# The new .so is moved into place, never overwritten: running processes keep the old one.
inplace: $(PY)
	@$(PY) -c "import pybind11, ninja, cmake" 2>/dev/null || $(PIP) install -q pybind11 ninja cmake
	@mkdir -p build/dev
	flock build/dev.lock sh -c '\
	  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) -DPython_EXECUTABLE=$(abspath $(PY)) >/dev/null && \
	  cmake --build build/dev && \
	  for f in build/dev/_C*.so; do cp "$$f" "pgfast/.$$(basename $$f).tmp" && \
	    mv -f "pgfast/.$$(basename $$f).tmp" "pgfast/$$(basename $$f)"; done'

clean:
	rm -rf build dist .benchmarks pgfast/_C*.so
