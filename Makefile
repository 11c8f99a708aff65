# Rapport: every habit is one command. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List every target
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml package.json package-lock.json
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Rapport needs Python 3.11 or newer"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,bench]'
	@command -v npm >/dev/null || { echo "error: npm (Node.js) is needed to fetch htmx; install Node.js 18+"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install Rapport with its tools

system-deps: ## Install the browser and IMAP server the end-to-end tests use (Debian, as root)
	@scripts/system-deps.sh

demo: install ## Run Rapport on SQLite with demo data at http://localhost:8000
	$(BIN)/rapport demo

test: install system-deps ## Run the whole test suite (PostgreSQL/Redis parts skip if absent)
	$(BIN)/pytest $(PYTEST_ARGS)

screenshots: install system-deps ## Refresh the screenshots in docs/images from the browser tests
	RAPPORT_SCREENSHOTS=docs/images $(BIN)/pytest -m browser -p no:randomly $(PYTEST_ARGS)

lint: install ## ruff, mypy and the import-linter layer contracts
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy src
	$(BIN)/lint-imports

format: install ## Format the code
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

bench: install ## Benchmarks against raw baselines; writes bench/results/latest.json
	$(BIN)/python -m bench $(BENCH_ARGS)

messages: install ## Extract translatable strings and update the Spanish catalog
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ -k gettext -k ngettext:1,2 -k InvalidInput -k Conflict -k Forbidden -k ReplyCheck:2 -k SendError --no-location --sort-output -o src/rapport/locale/messages.pot src
	$(BIN)/pybabel update -i src/rapport/locale/messages.pot -d src/rapport/locale --no-fuzzy-matching

clean: ## Remove the virtualenv, node_modules and local data
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install system-deps demo test screenshots lint format bench messages clean
