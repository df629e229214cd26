# Secure Chat M2M. `make run` serves the chat on http://localhost:8000; `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VAR := var
STAMP := $(VENV)/.installed
# Ansible with its linters (requirements/lint.lock), apart from the app's venv.
ANSIBLE_VENV := .venv-ansible
ANSIBLE_BIN := $(ANSIBLE_VENV)/bin
ANSIBLE_STAMP := $(ANSIBLE_VENV)/.installed
export SECURECHAT_DATABASE_URL ?= sqlite:///$(CURDIR)/$(VAR)/securechat.db
export SECURECHAT_UPLOAD_DIR ?= $(CURDIR)/$(VAR)/uploads

.PHONY: run test lint lint-ansible typecheck unit venv vectors vendor verify bundle locks clean help \
	lab lab-up lab-down lab-test docker-bundle docker-test

help:
	@echo "make run      serve on http://localhost:8000 (SQLite under ./var)"
	@echo "make test     lint, type-check and run the test suite (SQLite and MariaDB)"
	@echo "make vectors  regenerate docs/protocol-vectors.json"
	@echo "make vendor   refresh the browser client's vendored libraries (needs npm)"
	@echo "make bundle   build and sign dist/securechat-m2m-<version>.tar.gz (needs the package index)"
	@echo "make locks    regenerate requirements/*.lock (needs the package index)"
	@echo "make lab      build the bundle, boot lab hosts, deploy with site.yml, verify (LAYOUT=single|distributed|ha)"
	@echo "make lab-test the deployment tests on lab hosts (single and distributed layouts; root)"
	@echo "make lab-up   boot air-gapped lab hosts, LAYOUT=single|distributed|ha|docker [LAB_NAME=...] (root)"
	@echo "make lab-down stop a lab and remove all it made, LAB_NAME=... (default: LAYOUT)"
	@echo "make docker-bundle  the bundle with the Docker images (needs a running Docker Engine)"
	@echo "make docker-test    the Docker deployment end to end on a private dockerd (root)"

$(STAMP): app/pyproject.toml verify/pyproject.toml bundle/pyproject.toml lab/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'app[test]' -e 'verify[test]' -e bundle -e lab
	touch $@

venv: $(STAMP)

$(ANSIBLE_STAMP): requirements/lint.lock
	$(PYTHON) -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_BIN)/pip install --quiet --upgrade pip
	$(ANSIBLE_BIN)/pip install --quiet --require-hashes -r requirements/lint.lock
	touch $@

$(VAR)/secret-key:
	mkdir -p $(VAR)
	umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))' > $@

run: $(STAMP) $(VAR)/secret-key
	SECURECHAT_SECRET_KEY="$$(cat $(VAR)/secret-key)" $(BIN)/securechat db upgrade
	@echo "Secure Chat M2M: open http://localhost:8000"
	SECURECHAT_SECRET_KEY="$$(cat $(VAR)/secret-key)" exec $(BIN)/securechat serve --host 127.0.0.1 --port 8000

PACKAGES := app verify bundle lab

lint: $(STAMP) lint-ansible
	for package in $(PACKAGES); do \
		(cd $$package && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests) || exit 1; \
	done

# The collection: yamllint, then ansible-lint with the production profile (.ansible-lint).
lint-ansible: $(ANSIBLE_STAMP)
	$(ANSIBLE_BIN)/yamllint --strict .
	$(ANSIBLE_BIN)/ansible-lint

typecheck: $(STAMP)
	for package in $(PACKAGES); do (cd $$package && ../$(BIN)/mypy) || exit 1; done

unit: $(STAMP)
	for package in $(PACKAGES); do (cd $$package && ../$(BIN)/pytest -q $(PYTEST_ARGS)) || exit 1; done

test: lint typecheck unit

# Check the server that `make run` serves (or another: make verify URL=https://chat.lan CA=ca.crt).
URL ?= http://localhost:8000
verify: $(STAMP)
	$(BIN)/securechat-verify all --url $(URL) $(if $(CA),--ca $(CA)) --skip isolation,firewall

vectors: $(STAMP)
	$(BIN)/python -m securechat.client.vectors docs/protocol-vectors.json

# Pinned npm packages of the browser client, checked against the registry's integrity, into
# app/src/securechat/static/vendor/; rewrites the import map (with SRI) in static/index.html.
vendor:
	$(PYTHON) scripts/vendor.py

# The signed offline bundle (docs/bundle.md); the signing key is made on first use under
# ~/.local/share/securechat-bundle/gnupg unless GPG_HOME/KEY_ID say otherwise.
bundle:
	./offline-bundle.sh build $(if $(GPG_HOME),--gpg-home $(GPG_HOME)) $(if $(KEY_ID),--key-id $(KEY_ID))

locks:
	$(PYTHON) scripts/locks.py

# Air-gapped Debian 12 lab hosts (systemd-nspawn, isolated bridge) and inventory/lab-$(LAB_NAME)
# (docs/lab.md). Several named labs may run at once: make lab-up LAYOUT=ha LAB_NAME=tls.
LAYOUT ?= single
LAB_NAME ?= $(LAYOUT)
lab-up: $(STAMP)
	$(BIN)/securechat-lab up $(LAYOUT) --name $(LAB_NAME)

lab-down: $(STAMP)
	$(BIN)/securechat-lab down $(LAB_NAME)

# A working chat on air-gapped lab hosts, from a fresh bundle of this tree: site.yml ends by
# running securechat-verify and printing the URL, the CA fingerprint and the admin password file.
lab: $(STAMP) $(ANSIBLE_STAMP)
	./offline-bundle.sh build
	$(BIN)/securechat-lab up $(LAYOUT) --name $(LAB_NAME)
	$(ANSIBLE_BIN)/ansible-playbook -i inventory/lab-$(LAB_NAME) playbooks/site.yml

# Deployment tests (lab/tests, marker `lab`): first run, idempotence, check mode, verify, chat
# over https, firewall matrix and reboot, for the single and distributed layouts.
lab-test: $(STAMP) $(ANSIBLE_STAMP)
	cd lab && ../$(BIN)/pytest -m lab -v $(PYTEST_ARGS)

# The Docker deployment (docs/docker.md): the bundle plus its images, built offline from the
# bundle's own packages and wheels by docker/build-images.sh (Docker Engine must be running).
docker-bundle:
	./offline-bundle.sh build --with-docker-images $(if $(GPG_HOME),--gpg-home $(GPG_HOME)) $(if $(KEY_ID),--key-id $(KEY_ID))

# docker/tests: a private dockerd that leaves the host firewall alone, a bundle with images,
# `docker load`, compose up, securechat-verify, a database restart and kill, nothing left behind
# (root, docker.io and docker-compose); then playbooks/docker.yml on an air-gapped lab host of the
# `docker` layout (systemd-container). SECURECHAT_DOCKER_TEST_BUNDLE=<tarball> skips the build.
docker-test: $(STAMP) $(ANSIBLE_STAMP)
	cd docker && ../$(BIN)/ruff check tests && ../$(BIN)/ruff format --check tests && ../$(BIN)/mypy
	cd docker && ../$(BIN)/pytest -v $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) app/src/*.egg-info

# Our server beside the Node socket.io reference peer, S1 to S6, the ratio table (docs/benchmarks.md;
# MariaDB on 127.0.0.1:3306, Node 20 and npm). BENCH_ARGS=--quick for a smoke run.
.PHONY: bench
bench: $(STAMP)
	bench/run.sh $(BENCH_ARGS)
