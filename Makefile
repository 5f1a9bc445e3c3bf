# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export SHARDKIT_CACHE := $(CURDIR)/.cache
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# the demo's stages two at a time (`make demo JOBS=1`: one at a time, on every core)
JOBS ?= 2

.PHONY: install demo test test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-resources.txt constraints.txt pyproject.toml
	@command -v espeak-ng >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq espeak-ng >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null; }; }; } || \
	  echo "note: espeak-ng not installed (optional: synthetic speech clips); apt-get install espeak-ng"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -r requirements-resources.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

demo: install
	$(BIN)/shardkit doctor
	$(BIN)/shardkit study --preset cpu-demo --out runs/demo --jobs $(JOBS)

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: install  # every benchmark but the GPU smoke and the ceilings, on this machine (the training step alone took 8 minutes on a slow 2-core machine); JSON in benchmarks/results/
	$(BIN)/python -m benchmarks.eval_throughput
	$(BIN)/python -m benchmarks.limit
	$(BIN)/python -m benchmarks.train_step
	$(BIN)/python -m benchmarks.train_memory
	$(BIN)/python -m benchmarks.make_data

test-all: install
	$(BIN)/pytest -q -m ''

clean:
	rm -rf $(VENV) .cache runs
