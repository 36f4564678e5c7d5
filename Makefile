# olor-mm: `make test` and `make demo` set up .venv (idempotent) and run.
#
# Variables:
#   PYTHON  interpreter that creates the venv            (python3)
#   VENV    where the venv lives                         (.venv)
#   TORCH   pip arguments that install torch, before anything else
#           (torch==2.13.0, the CPU wheel here); for a GPU, e.g.
#           TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu121"
# mmcv is built from source with its ops (CUDA ops too when torch sees a GPU,
# or with FORCE_CUDA=1) unless PIP_FIND_LINKS names a folder holding a
# matching mmcv wheel (same Python, same torch build).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# every install keeps setuptools<81 (see requirements/constraints.txt)
PIPI := $(PIP) install -c requirements/constraints.txt
STAMP := $(VENV)/.olor-mm-installed
REQS := pyproject.toml setup.py $(wildcard requirements/*.txt)

# mmcv's setup.py builds its C++ (and, with a CUDA torch, CUDA) ops only
# when asked to.
export MMCV_WITH_OPS := 1

.PHONY: setup test lint quickstart demo forgetting clean

setup: $(STAMP)

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIPI) -q -r requirements/build.txt
	$(PIPI) -q $(TORCH)
	# olor-mm with both extras and the test tools; the constraints pin the
	# tested stack. --no-build-isolation: an isolated build of mmcv cannot
	# see torch and silently drops its compiled ops.
	$(PIPI) -q --no-build-isolation -e ".[all,tests]"
	# timm without torchvision (requirements/tests-nodeps.txt says why)
	$(PIPI) -q --no-deps -r requirements/tests-nodeps.txt
	# DeepSpeed beside the venv, for its tests only (requirements/deepspeed.txt
	# says why); --no-deps: --target would not see the venv's torch
	$(PIPI) -q --no-build-isolation --no-deps --upgrade \
	  --target $(VENV)/deepspeed -r requirements/deepspeed.txt
	@$(PY) -c "import pkg_resources" || { \
	  echo "ERROR: setuptools without pkg_resources in $(VENV)."; exit 1; }
	@$(PY) -c "import mmcv._ext" 2>/dev/null || { \
	  echo "ERROR: mmcv is installed without its compiled ops (mmcv._ext)."; \
	  echo "Run: $(PIP) uninstall -y mmcv && rm -f $(STAMP) && make setup"; \
	  echo "(a cached mmcv wheel built for another torch breaks it too)."; \
	  exit 1; }
	touch $@

# the whole suite, then its 25 slowest tests (--durations), so that the
# cost of a slow test stays in sight
test: setup
	$(PY) -m pytest -q tests --durations=25

# OpenMMLab's lint (settings in setup.cfg, hooks in .pre-commit-config.yaml):
# flake8, isort and yapf in check mode over the tracked Python files (not
# the fourth probe's case bodies: fragments that run_all.sh joins to
# bodies/_pre.py, written as the probe wrote them)
LINT_FILES = $(shell git ls-files '*.py' ':!benchmarks/probe4/bodies' 2>/dev/null)
lint: setup
	$(PIPI) -q -r requirements/lint.txt
	@echo "flake8, isort --check-only, yapf --diff: $(words $(LINT_FILES)) files"
	@$(PY) -m flake8 $(LINT_FILES)
	@$(PY) -m isort --check-only --diff $(LINT_FILES)
	@$(PY) -m yapf --diff $(LINT_FILES)

# the README's quick start: a small Mask R-CNN pre-trained, then fine-tuned
# with and without OLOR on generated data (QUICKSTART_ARGS passes flags)
quickstart: setup
	$(PY) tools/quickstart.py $(QUICKSTART_ARGS)

# DEMO_ARGS="--part det" (or seg) runs one half of the demo
demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

# the forgetting benchmark (benchmarks/forgetting.py), with the optional
# `bench` extra (mlxtend); FORGETTING_ARGS="--sweep" runs the sweep
forgetting: setup
	$(PIPI) -q -r requirements/bench.txt
	$(PY) benchmarks/forgetting.py $(FORGETTING_ARGS)

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
