# Two commands for a fresh clone: `make demo` (train the default model on built-in data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install bench clean

demo: $(VENV)/.installed
	$(BIN)/lamina train configs/digits_cnn.yaml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

bench: $(VENV)/.installed
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) runs .pytest_cache
