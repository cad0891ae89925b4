# Relay Hub. `make run` starts the embedded hub with its sandbox; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app hub
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test test-fast bench chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(FLASK) db upgrade
	$(FLASK) serve

# Browser tests drive Debian's Chromium; install it when missing (never a downloaded browser).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: chromium could not be installed; browser tests will fail"; \
	  else echo "warning: /usr/bin/chromium missing; run 'sudo apt-get install -y chromium'"; fi; \
	fi

test: install chromium
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: install
	$(PY) bench/queue.py

clean:
	rm -rf $(VENV) instance .pytest_cache
