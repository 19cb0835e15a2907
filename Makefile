# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "arbkit needs Python >= 3.11 (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo records a minute of the embedded world, writes the latency report of that session
# (the newest under data/recordings) and says which notebook to open next.
demo: $(STAMP)
	$(BIN)/arbkit demo
	@session=$$(ls -td data/recordings/*/ | head -n 1); session=$${session%/}; \
	$(BIN)/arbkit report "$$session" && \
	echo "" && \
	echo "next: $(BIN)/jupyter lab notebooks/   and open notebooks/02_rest_vs_websocket.ipynb" && \
	echo "      (set SESSIONS = \"$$session\" in its parameters cell; data/sample is the default)"

lint: $(STAMP)
	$(BIN)/ruff check arbkit tests bench notebooks
	$(BIN)/ruff format --check arbkit tests bench notebooks

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
