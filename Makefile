# memhost: two entry points on a fresh machine that has python3 and make.
#   make demo   the main job on the emulated board
#   make test   every test
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STUBS   := .stubs
STAMP   := $(VENV)/.installed

PICO    := hil/pico
PICO_STAMP := $(PICO)/node_modules/.installed

.PHONY: demo test install system-deps stubs pico wheel-smoke clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,ann,docs,cluster]'
	touch $(STAMP)

install: $(STAMP)

# ngspice for the schematic simulations, chromium for the HTML run report test (Debian).
# Needs root; prints what to run otherwise.
system-deps:
	@command -v ngspice >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice >/dev/null; \
	  else echo "ngspice missing: run 'sudo apt-get install ngspice' (the schematic tests fail without it)"; fi; }
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "node/npm missing: run 'sudo apt-get install nodejs npm' (the emulated Pico needs them)"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (the report test needs it)"; fi; }

# MicroPython stubs live in their own folders: in the host venv they would shadow sys/time.
$(STUBS)/.done: $(STAMP)
	$(BIN)/pip install -q --target $(STUBS)/rp2 micropython-rp2-stubs
	$(BIN)/pip install -q --target $(STUBS)/stm32 micropython-stm32-stubs
	touch $@

stubs: $(STUBS)/.done

# The emulated Pico's Node packages (rp2040js, uf2), exactly as package-lock.json pins them.
$(PICO_STAMP): $(PICO)/package.json $(PICO)/package-lock.json
	cd $(PICO) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

pico: $(PICO_STAMP)

# the demo needs the core and the emulated board only (no torch, numba, test tools)
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[emu]'
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/memhost demo

# the package as users get it (tests/test_wheel.py, also part of make test): sdist and wheel built
# from this tree, installed non-editable into a new venv, run from outside the checkout
wheel-smoke: $(STAMP) system-deps pico
	MEMHOST_NO_SKIP=1 $(BIN)/pytest -q tests/test_wheel.py

test: $(STAMP) system-deps stubs pico
	MEMHOST_NO_SKIP=1 $(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(STUBS) .pytest_cache $(PICO)/node_modules
