# Secure Chat M2M. `make run` serves the chat on http://localhost:8000; `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VAR := var
STAMP := $(VENV)/.installed
export SECURECHAT_DATABASE_URL ?= sqlite:///$(CURDIR)/$(VAR)/securechat.db
export SECURECHAT_UPLOAD_DIR ?= $(CURDIR)/$(VAR)/uploads

.PHONY: run test lint typecheck unit venv vectors verify clean help

help:
	@echo "make run      serve on http://localhost:8000 (SQLite under ./var)"
	@echo "make test     lint, type-check and run the test suite (SQLite and MariaDB)"
	@echo "make vectors  regenerate docs/protocol-vectors.json"

$(STAMP): app/pyproject.toml verify/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'app[test]' -e 'verify[test]'
	touch $@

venv: $(STAMP)

$(VAR)/secret-key:
	mkdir -p $(VAR)
	umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))' > $@

run: $(STAMP) $(VAR)/secret-key
	SECURECHAT_SECRET_KEY="$$(cat $(VAR)/secret-key)" $(BIN)/securechat db upgrade
	@echo "Secure Chat M2M: open http://localhost:8000"
	SECURECHAT_SECRET_KEY="$$(cat $(VAR)/secret-key)" exec $(BIN)/securechat serve --host 127.0.0.1 --port 8000

PACKAGES := app verify

lint: $(STAMP)
	for package in $(PACKAGES); do \
		(cd $$package && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests) || exit 1; \
	done

typecheck: $(STAMP)
	for package in $(PACKAGES); do (cd $$package && ../$(BIN)/mypy) || exit 1; done

unit: $(STAMP)
	cd app && ../$(BIN)/pytest -q $(PYTEST_ARGS)
	cd verify && ../$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

# Check the server that `make run` serves (or another: make verify URL=https://chat.lan CA=ca.crt).
URL ?= http://localhost:8000
verify: $(STAMP)
	$(BIN)/securechat-verify all --url $(URL) $(if $(CA),--ca $(CA)) --skip isolation,firewall

vectors: $(STAMP)
	$(BIN)/python -m securechat.client.vectors docs/protocol-vectors.json

clean:
	rm -rf $(VENV) app/src/*.egg-info
