# bulkmail — two commands: `make demo` and `make test`. The Makefile makes its own virtualenv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Every package at the version the suite was run with (docs/dependencies.md says how to upgrade).
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
PIP_VERSION := 26.3
UV_VERSION  := 0.13.8
# checkov pins an older boto3 than aws-sam-cli: it gets a virtualenv (and a lock) of its own.
CHECKOV_VENV  := .venv-checkov
CHECKOV_LOCK  := requirements-checkov.lock
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat $(CHECKOV_LOCK) | cksum | cut -d' ' -f1)
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo serve test suite unit lint sam-check lock deploy chaos bench clean

# The lock, then the project itself without resolving again; pip check fails when pyproject.toml
# asks for something the lock does not hold (run `make lock`).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip==$(PIP_VERSION)'
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	rm -f $(VENV)/.installed-* && touch $@

$(CHECKOV_STAMP): $(CHECKOV_LOCK)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'pip==$(PIP_VERSION)'
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r $(CHECKOV_LOCK)
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

demo: $(STAMP) ## a real campaign on the embedded runtime, no AWS account needed
	$(BIN)/bulkmail demo

serve: $(STAMP) ## the whole stack on 127.0.0.1: API :8000, AWS endpoint :4566 (Ctrl-C stops)
	$(BIN)/bulkmail serve

# Lint, SAM's checks and the suite side by side: much of the suite waits on real time (Step
# Functions' Wait states, `bulkmail serve` processes, a browser), and the checks fill that idle CPU.
# lint's and sam-check's output is printed a command at a time (--output-sync), the suite's as it
# runs (the `+` below); checkov's virtualenv is built meanwhile, on a first run.
test: $(STAMP) ## lint, the whole suite and the template through SAM's own checks, side by side
	$(MAKE) --no-print-directory -j3 --output-sync=line lint sam-check suite

# The suite on JOBS workers (JOBS=1: one process): more workers than this machine's 2 cores, for the
# same reason. A test at a time goes to the next free worker, the longest first (tests/conftest.py),
# except a file whose tests share a module fixture (marked xdist_group), which goes whole.
JOBS ?= 4
suite: $(STAMP)
	+$(BIN)/pytest -n $(JOBS) --dist loadgroup --no-loadscope-reorder

unit: $(STAMP) ## the tests that need no emulated AWS (tests/conftest.py marks the rest `emulator`), in seconds
	$(BIN)/pytest -q -m 'not emulator'

lint: $(STAMP) ## ruff (lint + format check) and mypy, configured in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Re-resolve the locks after a change to pyproject.toml or requirements-{checkov,layer}.in. Keeps every
# version it can; `make lock UPGRADE=moto` moves one package (docs/dependencies.md).
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'
	.venv-lock/bin/uv pip compile --quiet --universal --python-version 3.11 --extra dev \
		$(if $(UPGRADE),--upgrade-package $(UPGRADE)) pyproject.toml -o $(LOCK)
	.venv-lock/bin/uv pip compile --quiet --universal --python-version 3.11 \
		$(if $(UPGRADE),--upgrade-package $(UPGRADE)) requirements-checkov.in -o $(CHECKOV_LOCK)
	.venv-lock/bin/uv pip compile --quiet --universal --python-version 3.11 -c $(LOCK) \
		requirements-layer.in -o lib/requirements.txt

sam-check: $(STAMP) $(CHECKOV_STAMP) ## SAM's own checks, the serverless rules and checkov (suppressions: .checkov.yaml, template Metadata)
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f template.yaml --skip-download
	$(BIN)/sam build --cached --parallel

deploy: $(STAMP) ## build, then a guided deploy with this project's own SAM CLI (docs/deploy.md)
	$(BIN)/sam build --cached --parallel
	$(BIN)/sam deploy --guided

chaos: $(STAMP) ## many seeds of fault injection; exits non-zero if any audit fails
	mkdir -p outbox
	$(BIN)/bulkmail chaos --contacts 300 --seeds $${SEEDS:-50} --json > outbox/chaos-summary.json || (tail -c 2000 outbox/chaos-summary.json; exit 1)
	@$(BIN)/python -c "import json; d=json.load(open('outbox/chaos-summary.json')); print({k: d[k] for k in ('seeds','ok','duplicates','crash_window_duplicates','crash_window_unrecorded','lost','counter_mismatches','faults_injected')})"

bench: $(STAMP) ## campaigns of 2,000 / 10,000 / 50,000 contacts and the seed design: time, requests, cost per email
	mkdir -p outbox
	$(BIN)/bulkmail bench --sizes $${SIZES:-2000,10000,50000} --json > outbox/bench.json
	@tail -n 1 outbox/bench.json | $(BIN)/python -c "import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps({k: d[k] for k in ('speedup_vs_seed','non_ses_requests_per_email','non_ses_cost_spread','cost_per_million')}, indent=1))"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .venv-lock .aws-sam outbox
