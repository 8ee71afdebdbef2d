# README's two commands: `make local` (run everything offline) and `make test`.
PYTHON ?= python3
VENV := .venv
MOTO_VENV := .venv-moto
CHECKOV_VENV := .venv-checkov

.PHONY: venv local stop wipe test lint ca-bundle

venv: $(VENV)/.installed $(MOTO_VENV)/.installed $(CHECKOV_VENV)/.installed

# Deployer, engine and test tool chain.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

# The moto server (moto>=5 cannot share a venv with sceptre 4.7).
$(MOTO_VENV)/.installed: requirements-moto.txt pyproject.toml
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/python -m pip install -q --upgrade pip
	$(MOTO_VENV)/bin/python -m pip install -q -r requirements-moto.txt
	$(MOTO_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

# checkov (tests/stacks scan the rendered templates with it); its deps conflict with sceptre's.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	touch $@

# The RDS CA bundle the Lambda package ships as envsync/certs/ (TLS to Aurora in AWS).
ca-bundle: lambda_code/certs/rds-global-bundle.pem
lambda_code/certs/rds-global-bundle.pem:
	mkdir -p $(@D)
	curl -fsSL -o $@ https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem

local: venv
	$(VENV)/bin/envsync-local up

stop: venv
	$(VENV)/bin/envsync-local down

wipe: venv
	$(VENV)/bin/envsync-local down --wipe

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin --no-tips --violations -t=3.9- lambda_code hooks local
