# Every target starts from `setup`, so a clean clone needs nothing but Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: setup system-packages test-tools run test build check edge bench clean

setup: system-packages $(STAMP) test-tools

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e '.[test]'
	touch $(STAMP)

# nginx (edge mode), chromium (browser tests) and postgresql (its tests) come from Debian; as
# root we install them.
system-packages:
	@sh scripts/system-packages.sh

# axe-core (pinned, integrity-checked) for the accessibility tests, into .tools/ (git-ignored).
test-tools: $(STAMP)
	@$(BIN)/python scripts/fetch_axe.py

build: setup
	$(BIN)/gate build

check: setup
	$(BIN)/gate check

run: setup
	$(BIN)/gate build
	GATE_MODE=local $(BIN)/gate serve --host 127.0.0.1 --port $(PORT)

# In parallel (pytest-xdist; each test module on one worker, so its servers start once), then
# the few tests that assert wall-clock time, alone. TEST_WORKERS=0: no workers, one process.
TEST_WORKERS ?= 3
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not serial" --durations=25
	$(BIN)/python -m pytest -m serial

# Plain http on 127.0.0.1:8080, so local mode (no Secure cookies); with EDGE_TLS_CERT and
# EDGE_TLS_KEY it is https and production mode (Secure cookies, HSTS). GATE_MODE overrides both.
edge: setup
	$(BIN)/gate build
	if [ -n "$${EDGE_TLS_CERT:-}$${EDGE_TLS_KEY:-}" ]; then mode=production; else mode=local; fi; \
	GATE_MODE=$${GATE_MODE:-$$mode} sh deploy/edge.sh

bench: setup
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || echo "please install wrk (apt-get install wrk)"
	$(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf site .pytest_cache
