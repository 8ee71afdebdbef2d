# README's two commands: `make local` (run everything offline) and `make test`.
PYTHON ?= python3
VENV := .venv
MOTO_VENV := .venv-moto
CHECKOV_VENV := .venv-checkov
PY39_VENV := .venv39
PYTHON39 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9 /usr/local/bin/python3.9 /usr/bin/python3.9))
# The engine's own tests, re-run on Python 3.9 (the Lambda runtime) by `make test-py39`.
PY39_TESTS := tests/engine/migrations/test_scripts.py tests/engine/migrations/test_migrate.py tests/engine/refdata/test_sync.py \
	tests/engine/lint/test_lint.py tests/engine/approval/test_approval.py tests/engine/approval/test_answer.py tests/engine/migrations/test_origin.py \
	tests/engine/drift/test_normalise.py tests/engine/lambdas/test_secure_parameter.py tests/engine/credentials/test_db_users.py

.PHONY: venv local stop wipe test test-fast test-lifecycle test-py39 lint ca-bundle browser

LAMBDA_WHEELS := .lambda-wheels

venv: $(VENV)/.installed $(MOTO_VENV)/.installed $(CHECKOV_VENV)/.installed $(LAMBDA_WHEELS)/.downloaded

# The Lambda package's dependencies as wheels for the runtime (python3.9, Amazon Linux 2 x86_64):
# a compiled one (cryptography) cannot be copied from .venv, which is built for this machine.
$(LAMBDA_WHEELS)/.downloaded: lambda_code/requirements.txt $(VENV)/.installed
	rm -rf $(LAMBDA_WHEELS)
	$(VENV)/bin/python -m pip download -q --only-binary=:all: --platform manylinux2014_x86_64 \
		--python-version 3.9.20 --implementation cp -d $(LAMBDA_WHEELS) -r lambda_code/requirements.txt
	touch $@

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

# Python 3.9, the Lambda runtime: the engine and its test tools only.
$(PY39_VENV)/.installed: requirements-py39.txt lambda_code/requirements.txt
	@test -n "$(PYTHON39)" || { echo "Python 3.9 not found: install it (e.g. pyenv install 3.9) or set PYTHON39=" >&2; exit 1; }
	$(PYTHON39) -m venv $(PY39_VENV)
	$(PY39_VENV)/bin/python -m pip install -q --upgrade pip
	$(PY39_VENV)/bin/python -m pip install -q -r requirements-py39.txt
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

# Debian's chromium, for the status page's headless-browser test (.ci/run installs it too).
browser:
	command -v chromium >/dev/null 2>&1 || apt-get install -y chromium

# .venv39 too: the aurora stack's custom resources run the deployed package on python3.9.
local: venv $(PY39_VENV)/.installed
	$(VENV)/bin/envsync-local up

stop: venv
	$(VENV)/bin/envsync-local down

wipe: venv
	$(VENV)/bin/envsync-local down --wipe

# .venv39 too: offline Lambdas run their deployed package on the function's runtime (python3.9).
# The up -> down -> up lifecycle launches two whole systems of its own: `make test-lifecycle`,
# which .ci/run runs after this.
test: venv $(PY39_VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not lifecycle" $(PYTEST_ARGS)

test-lifecycle: venv $(PY39_VENV)/.installed
	$(VENV)/bin/python -m pytest -m lifecycle $(PYTEST_ARGS)

# The suites that need no launched stacks (every test using the `launched` project is marked).
test-fast: venv $(PY39_VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not launched and not lifecycle" $(PYTEST_ARGS)

test-py39: venv $(PY39_VENV)/.installed
	PYTHONPATH=lambda_code:local:. $(PY39_VENV)/bin/python -m pytest -p no:cacheprovider -q $(PY39_TESTS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin --no-tips --violations -t=3.9- lambda_code hooks local tools
