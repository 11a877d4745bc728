# Two commands on a fresh machine:
#   make run   – set up, migrate, fill a demo database (first time), serve on :8000
#   make test  – set up with dev tools, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DEALS ?= 3000
export LOUDOU_DATABASE_URL ?= sqlite:///./loudou.db

.PHONY: run test install install-dev lint typecheck pytest browser-deps screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/loudou migrate
	$(BIN)/loudou demo --deals $(DEMO_DEALS) --seed 42 --if-empty
	@echo "Serving Loudou on http://127.0.0.1:8000 (API docs: http://127.0.0.1:8000/docs)"
	$(BIN)/loudou serve

lint: install-dev
	$(BIN)/ruff check src tests bench scripts

typecheck: install-dev
	$(BIN)/mypy

# Browser tests drive Debian's chromium (pip cannot install it); CJK fonts for Chinese pages.
browser-deps:
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "Installing chromium and CJK fonts with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk; \
	else \
		echo "The browser tests need Debian's chromium. Run: sudo apt-get install -y chromium fonts-noto-cjk"; \
		exit 1; \
	fi

pytest: install-dev browser-deps
	scripts/ensure-postgres.sh
	$(BIN)/pytest -n 2 --dist loadgroup -q

screenshots: install-dev browser-deps
	$(BIN)/python scripts/screenshots.py

test: lint typecheck pytest

bench: install-dev
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
