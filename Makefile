# README's two commands: `make local` (run everything offline) and `make test`.
PYTHON ?= python3
VENV := .venv
MOTO_VENV := .venv-moto
CHECKOV_VENV := .venv-checkov
# The Lambda runtime is one config value (lambda_runtime); envsync_sceptre/config/runtime.py derives
# from it the package's wheels (.lambda-wheels/<runtime>/) and the venv offline functions run
# on (.venv39, .venv312, ...). RUNTIME_INFO asks it, once .venv exists.
RUNTIME_INFO = $(VENV)/bin/python -m envsync_sceptre.config.runtime
# The engine's own tests, re-run on another Python by `make test-engine PY=3.x`.
ENGINE_TESTS := tests/engine/migrations/test_scripts.py tests/engine/migrations/test_migrate.py tests/engine/refdata/test_sync.py \
	tests/engine/lint/test_lint.py tests/engine/approval/test_approval.py tests/engine/approval/test_answer.py tests/engine/migrations/test_origin.py \
	tests/engine/drift/test_normalise.py tests/engine/lambdas/test_secure_parameter.py tests/engine/credentials/test_db_users.py \
	tests/engine/mysql/test_row_digest.py tests/engine/refdata/test_stream.py
PY ?= 3.9
# The runtimes the test suite builds packages for and runs them on (tests/stacks/test_packaging.py,
# the python3.12 launch in tests/e2e/test_lifecycle.py), besides the configured ones.
TESTED_RUNTIMES := python3.9 python3.12 python3.13

.PHONY: venv runtimes tested-runtimes local stop wipe rehearse test test-fast test-lifecycle test-engine test-engines test-py39 lint ca-bundle browser

venv: $(VENV)/.installed $(MOTO_VENV)/.installed $(CHECKOV_VENV)/.installed runtimes

# Every configured lambda_runtime (config/config.yaml and config/<env>/config.yaml; two while an
# upgrade rolls through): its Lambda wheels and its venv.
runtimes: $(VENV)/.installed
	@targets="$$($(RUNTIME_INFO) targets config)" && $(MAKE) --no-print-directory $$targets

tested-runtimes: $(VENV)/.installed
	@targets="$$($(RUNTIME_INFO) targets $(TESTED_RUNTIMES))" && $(MAKE) --no-print-directory $$targets

# The Lambda package's dependencies as wheels for one runtime (e.g. .lambda-wheels/python3.12):
# a compiled one (cryptography) cannot be copied from .venv, which is built for this machine.
.lambda-wheels/%/.downloaded: lambda_code/requirements.txt $(VENV)/.installed
	rm -rf $(@D)
	$(VENV)/bin/python -m pip download -q $$($(RUNTIME_INFO) pip-args $*) -d $(@D) -r lambda_code/requirements.txt
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

# A Lambda runtime's Python (.venv39, .venv312, .venv313): the engine and its test tools only.
# Offline functions of that runtime run on it; `make test-engine PY=3.x` runs the engine's tests.
.venv3%/.installed: requirements-runtime.txt lambda_code/requirements.txt $(VENV)/.installed
	interpreter="$$($(RUNTIME_INFO) interpreter 3.$*)" && rm -rf $(@D) && "$$interpreter" -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q -r requirements-runtime.txt
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

# `venv` builds the configured runtimes' venvs too: offline functions (the aurora stack's custom
# resources first) run their deployed package on the function's runtime.
local: venv
	$(VENV)/bin/envsync-local up

stop: venv
	$(VENV)/bin/envsync-local down

wipe: venv
	$(VENV)/bin/envsync-local down --wipe

# Before the first deploy, without AWS credentials: the permission proof over every stack of every
# env as config/ names the accounts, and the principals to create by hand (README).
rehearse: $(VENV)/.installed
	$(VENV)/bin/envsync-rehearse

# The suite runs on $(WORKERS) pytest-xdist workers (WORKERS=0: in this process); tests/conftest.py
# groups the tests so the launched project is launched once. The up -> down -> up lifecycle
# launches whole systems of its own: `make test-lifecycle`, which .ci/run runs after this.
WORKERS ?= 2
PARALLEL = -n $(WORKERS) --dist loadgroup
test: venv tested-runtimes
	$(VENV)/bin/python -m pytest $(PARALLEL) -m "not lifecycle" $(PYTEST_ARGS)

test-lifecycle: venv tested-runtimes
	$(VENV)/bin/python -m pytest $(PARALLEL) -m lifecycle $(PYTEST_ARGS)

# The unit-level suites: no launched stacks and no MariaDB or moto server (tests/conftest.py marks
# every test that uses one `standins`); `make test` runs those too.
test-fast: venv tested-runtimes
	$(VENV)/bin/python -m pytest $(PARALLEL) -m "not launched and not lifecycle and not standins" $(PYTEST_ARGS)

# The engine's tests on Python $(PY) (e.g. make test-engine PY=3.13).
test-engine: $(VENV)/.installed
	$(MAKE) --no-print-directory .venv$(subst .,,$(PY))/.installed
	PYTHONPATH=lambda_code:local:hooks:tools:. .venv$(subst .,,$(PY))/bin/python -m pytest -p no:cacheprovider -q $(ENGINE_TESTS)

# ... on the oldest and the newest supported runtime (envsync_sceptre/config/lifecycle.py's table).
test-engines: $(VENV)/.installed
	for py in $$($(RUNTIME_INFO) ends); do $(MAKE) --no-print-directory test-engine PY=$$py || exit 1; done

test-py39:
	$(MAKE) --no-print-directory test-engine PY=3.9

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin --no-tips --violations -t=3.9- lambda_code hooks local tools
