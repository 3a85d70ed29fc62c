# Two commands for a newcomer:  `make run` (demo on SQLite)  and  `make test` (whole suite).
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
FLASK   = $(VENV)/bin/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run serve bench-boot test test-clock browser contract install translations translations-update migrate demo lint bench-lookup bench-checkout bench-paths bench-profile bench-campaigns bench-sending bench-reports bench-imports bench-legacy-import clean

# Installs are fully pinned: requirements.txt and requirements-dev.txt are the inputs people edit (ranges
# allowed); requirements.lock / requirements-dev.lock are generated from them (every package, exact version,
# hashes) and only they are installed. After changing an input, run `make lock` and commit the .lock files.
$(VENV)/.installed: requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed

# pip-tools runs from a throwaway virtualenv, so it never lands in the project's environment. Existing pins
# are kept; to move one: make lock UPGRADE="--upgrade-package flask" (or UPGRADE=--upgrade for all).
PIP_TOOLS ?= pip-tools==7.6.2
LOCK_FLAGS = --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
.PHONY: lock
lock:
	@set -e; tools=$$(mktemp -d); trap 'rm -rf "$$tools"' EXIT; \
	$(PYTHON) -m venv "$$tools"; "$$tools/bin/pip" install --quiet "$(PIP_TOOLS)"; \
	"$$tools/bin/pip-compile" $(LOCK_FLAGS) $(UPGRADE) -o requirements.lock requirements.txt; \
	"$$tools/bin/pip-compile" $(LOCK_FLAGS) $(UPGRADE) -o requirements-dev.lock requirements-dev.txt

translations: install
	$(VENV)/bin/pybabel compile -d translations >/dev/null

# After adding or changing UI strings: refresh the catalogue, then translate the new entries in the .po.
translations-update: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 --no-location -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-wrap

# The demo runs in development mode (CRM_ENV=development): no SECRET_KEY to set, a random one
# is made on first start and kept in instance/secret_key (git-ignored). Production sets
# SECRET_KEY and leaves CRM_ENV unset; see README "Secrets".
migrate demo run: export CRM_ENV ?= development

migrate: translations
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) crm demo

run: demo
	@echo ""
	@echo "  Member CRM is starting at http://$(HOST):$(PORT)/"
	@echo "  Demo logins (password demo1234): admin, manager, frontdesk, hoteldesk, cashier, marketing"
	@echo "  API docs: http://$(HOST):$(PORT)/api/v1/docs/"
	@echo ""
	@echo "  The scheduler runs beside it (sends scheduled campaigns); Ctrl-C stops both."
	@echo ""
	@mkdir -p $(RUN_DIR)
	@HOST=$(HOST) PORT=$(PORT) PATH="$(abspath $(VENV))/bin:$$PATH" \
		$(VENV)/bin/supervisord -c deploy/supervisord-demo.conf -j $(RUN_DIR)/supervisord-demo.pid

# Production on one host: migrate, then gunicorn (gunicorn.conf.py) and the scheduler, each restarted
# if it exits (deploy/supervisord.conf). Needs DATABASE_URL, SECRET_KEY and RATELIMIT_STORAGE_URI in
# the environment (README "Running in production"); listens on $(SERVE_PORT) (all interfaces).
SERVE_PORT ?= 8000
RUN_DIR    ?= instance
serve: translations
	@test -n "$$DATABASE_URL" || { echo "make serve runs production: set DATABASE_URL (PostgreSQL), see README"; exit 2; }
	$(FLASK) db upgrade
	@mkdir -p $(RUN_DIR)
	@PORT=$(SERVE_PORT) PATH="$(abspath $(VENV))/bin:$$PATH" \
		$(VENV)/bin/supervisord -c deploy/supervisord.conf -j $(RUN_DIR)/supervisord.pid

test: translations browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (tests/browser, Playwright drives it; no browser download) and a
# Chinese font for their screenshots: installed once with apt-get as root (CI) or through password-less
# sudo; otherwise say how and go on (the browser tests then skip, or fail with CI=true).
BROWSER_PACKAGES = chromium fonts-wqy-microhei
browser:
	@{ command -v chromium && fc-list :lang=zh family | grep -q .; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	  elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	  else echo "Chromium is not installed: the browser tests will be skipped (as root: apt-get install $(BROWSER_PACKAGES))"; fi; }

# The suite again on a shifted clock (tests/conftest.py, CRM_TEST_CLOCK), so nothing depends on the
# hour it runs at: 23:30 Beijing is in the quiet hours (21:00-08:00); 07:59 is their last minute and
# still the day before in UTC. SQLite only, to keep CI short: `make test` covers PostgreSQL.
CLOCK_TIMES ?= 23:30 07:59
test-clock: translations browser
	@set -e; for at in $(CLOCK_TIMES); do \
		echo "== the suite at $$at Asia/Shanghai (SQLite)"; \
		CRM_TEST_CLOCK=$$at CRM_TEST_BACKENDS=sqlite $(PY) -m pytest $(PYTEST_ARGS); \
	done

# The API contract: Schemathesis (every check, every operation, stateful, fixed seed) against a
# live gunicorn on a fresh PostgreSQL database with the demo data. Needs TEST_DATABASE_URL's server.
contract: translations
	$(PY) contract/run.py

lint: install
	$(VENV)/bin/ruff check crm tests bench contract

bench-lookup: install
	$(PY) bench/lookup.py

bench-checkout: install
	$(PY) bench/checkout_load.py

bench-paths: install
	$(PY) bench/paths_load.py

bench-profile: install
	$(PY) bench/checkout_profile.py

bench-campaigns: install
	$(PY) bench/campaigns.py

bench-sending: install
	$(PY) bench/sending.py

bench-reports: install
	$(PY) bench/reports.py

bench-imports: install
	$(PY) bench/imports.py

bench-legacy-import: install
	$(PY) bench/legacy_import.py

bench-boot: install
	$(PY) bench/boot.py

clean:
	rm -rf $(VENV) instance/*.sqlite3*
