# The README's two commands: `make up` runs the whole system, `make test` passes the tests.
# Both create .venv and install everything on a fresh machine that has only Python 3.11+ and make.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The installed `council` is a link tree of the package's files (a strict editable install): an
# edit shows at once, but a new or removed file needs a reinstall. FILES changes exactly then.
FILES := $(VENV)/.council-files
$(shell mkdir -p $(VENV) && find services schemas -type f ! -path '*__pycache__*' | sort > $(FILES).now \
	&& { cmp -s $(FILES).now $(FILES) && rm $(FILES).now || mv $(FILES).now $(FILES); })
ARGS ?=

.PHONY: up test lint typecheck unit bench fuzz install clean

$(STAMP): pyproject.toml $(FILES)
	@test -n "$(PYTHON)" || { echo "council needs Python 3.11 or newer on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=strict -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/council up $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || test -n "$$COUNCIL_CHROMIUM" \
		|| echo "NOTE: no Chromium here, so the browser tests (tests/browser) will NOT run; install it (sudo apt-get install chromium) to run them."
	$(BIN)/pytest -q

fuzz: install  # schemathesis against the OpenAPI document, longer than the run in `make test`
	COUNCIL_FUZZ_EXAMPLES=$${COUNCIL_FUZZ_EXAMPLES:-200} $(BIN)/pytest -q tests/e2e/test_openapi_fuzz.py

unit: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) build .council-data .pytest_cache .mypy_cache .ruff_cache
