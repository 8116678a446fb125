# Two entry points (see README.md):
#   make demo   set everything up, then run triage on its embedded defaults
#   make test   set everything up with the test tools, then mypy and the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install install-test peers bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch goes in first, pinned: that takes the CPU build; unpinned it pulls CUDA.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[ml]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[ml,test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/triage demo

# Real peers the integration tests talk to: Debian's Prometheus Alertmanager, and
# Debian's chromium and chromium-driver for the web view's browser test.
peers:
	@command -v prometheus-alertmanager >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null; \
	  else echo "prometheus-alertmanager is missing and cannot be installed here: its test will skip"; fi; }
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium or chromedriver is missing and cannot be installed here: the browser tests will skip"; fi; }

# The whole suite, after mypy; the import contract (tests/unit/test_layers.py) runs in it.
test: install-test peers lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/triage bench

# mypy cannot follow the editable install's folder mapping, so it checks a tree of
# symlinks laid out as the installed package is.
lint: install-test
	rm -rf build/typecheck && mkdir -p build/typecheck
	cp -rs $(CURDIR)/triage build/typecheck/triage
	for d in domain models ingest correlation store paging services api; do ln -s $(CURDIR)/$$d build/typecheck/triage/$$d; done
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p triage

clean:
	rm -rf $(VENV) *.egg-info triage.db
