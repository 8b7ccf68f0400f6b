# kefu: `make serve` and `make test` are all a fresh machine needs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
PREPARED := data/.prepared
HOST ?= 127.0.0.1
PORT ?= 8000
# One BLAS thread per process: the sentence encoder is fastest that way and turns run concurrently.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: install browser promtool pgvector serve test lint typecheck bench clean

install: $(STAMP) $(PREPARED) browser promtool pgvector

# The browser tests drive Debian's chromium (never a downloaded browser); CJK fonts for readable screenshots.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null \
	      || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else echo "note: chromium not installed (needs root and apt-get); the browser test will be skipped"; fi; \
	fi

# promtool and amtool check deploy/prometheus in the tests (Debian's prometheus and prometheus-alertmanager).
promtool:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager) >/dev/null \
	      || echo "warning: could not install promtool; the alert and Prometheus config tests will be skipped"; \
	  else echo "note: promtool not installed (needs root and apt-get); the alert tests will be skipped"; fi; \
	fi

# pgvector for KEFU_KB_INDEX=pgvector and its tests, on a PostgreSQL server run by this machine (Debian):
# the distribution's postgresql-<major>-pgvector, else built from Debian's pgvector source package against
# postgresql-server-dev-<major> (fetched through a private apt source list; the system's is not touched).
PG_MAJOR = $(shell psql -h 127.0.0.1 -U postgres -Atc 'show server_version_num' 2>/dev/null | cut -c1-2)
pgvector:
	@if [ -n "$(PG_MAJOR)" ] && [ -d /usr/lib/postgresql/$(PG_MAJOR) ] \
	    && [ ! -f /usr/share/postgresql/$(PG_MAJOR)/extension/vector.control ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq postgresql-$(PG_MAJOR)-pgvector) >/dev/null 2>&1 \
	    || (set -e; w=$$(mktemp -d); mkdir -p $$w/lists/partial; \
	        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > $$w/sources.list; \
	        o="-o Dir::Etc::SourceList=$$w/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$$w/lists -o APT::Sandbox::User=root"; \
	        apt-get install -y -qq postgresql-server-dev-$(PG_MAJOR) build-essential >/dev/null; \
	        apt-get $$o update -qq && cd $$w && apt-get $$o source --download-only -qq pgvector >/dev/null 2>&1; \
	        tar xzf $$w/pgvector_*.orig.tar.gz -C $$w; cd $$w/pgvector-*/; \
	        make -s OPTFLAGS="" PG_CONFIG=/usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config >/dev/null; \
	        make -s install PG_CONFIG=/usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config >/dev/null; rm -rf $$w) \
	    || echo "warning: could not install pgvector; the pgvector tests will be skipped"; \
	  else echo "note: pgvector not installed (needs root and apt-get); the pgvector tests will be skipped"; fi; \
	fi

$(VENV)/bin/activate:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (kefu needs Python 3.11+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/activate pyproject.toml requirements.lock
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements.lock -e '.[dev,local]'
	touch $(STAMP)

# Train and cache the demo pack's models (skipped when the cache is current).
$(PREPARED): $(STAMP) $(shell find kefu/packs -type f \( -name '*.yaml' -o -name '*.md' \) 2>/dev/null)
	$(VENV)/bin/kefu pack prepare
	@mkdir -p data && touch $(PREPARED)

serve: install
	@echo "kefu: open http://$(HOST):$(PORT)/"
	$(VENV)/bin/kefu serve --host $(HOST) --port $(PORT) --llm-local

test: install
	$(VENV)/bin/ruff check kefu tests bench
	$(VENV)/bin/mypy kefu
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check kefu tests bench
	$(VENV)/bin/ruff format --check kefu tests bench

typecheck: install
	$(VENV)/bin/mypy kefu

bench: install
	$(PY) bench/turn_latency.py --out bench/results/turn_latency.json

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
