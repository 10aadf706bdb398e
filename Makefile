# Two commands set everything up: `make demo` and `make test` (see README.md).
# Both create .venv with Python 3.12 when it is missing; PYTHON=/path/to/python3.12 chooses one.

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lab bench results clean

demo: $(VENV)/.installed-core
	$(PY) -m distillkit demo

test: $(VENV)/.installed-all
	$(PY) -m ruff check distillkit tests bench
	$(PY) -m pytest $(PYTEST_ARGS)
	DISTILLKIT_FAST=1 $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/

lab: $(VENV)/.installed-core
	$(VENV)/bin/jupyter lab notebooks/

bench: $(VENV)/.installed-all
	$(PY) bench/env_throughput.py --update-docs
	$(PY) bench/ppo_vs_rsl_rl.py --update-docs

# Trains what is missing under runs/ (hours on 2 cores from scratch; finished runs are reused), evaluates,
# rewrites docs/results.md.
results: $(VENV)/.installed-core
	$(PY) -m distillkit results

$(PY):
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for cand in python3.12 "env PYENV_VERSION=3.12.1 python3.12"; do \
	    if $$cand -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then py="$$cand"; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then echo "error: Python 3.12 not found; run 'make PYTHON=/path/to/python3.12 ...'" >&2; exit 1; fi; \
	echo "creating $(VENV) with $$py"; $$py -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Core: MuJoCo on the CPU, enough for `make demo` and every notebook.
$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# Everything `make test` needs: the GPU engines (which also run on the CPU) and the dev tools.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[isaaclab,warp,dev]'
	touch $@ $(VENV)/.installed-core

clean:
	rm -rf $(VENV) bench/out .pytest_cache
