# Two commands do all the set-up: `make demo` (install + the main job, a sweep) and `make test` (install + the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Without a CUDA GPU, install the CPU build of torch first so pip never pulls a multi-GB CUDA build.
# (Elsewhere than this workplace, add: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu)
TORCH_CPU ?= torch==2.13.0

.PHONY: install browser demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q "$(TORCH_CPU)"; fi
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The browser tests drive Debian's Chromium with its ChromeDriver (tests/test_ui_browser.py).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The sweep, then its HTML report; the last lines say where to look. Exits with the sweep's status.
demo: install
	$(VENV)/bin/gantune sweep wgan_large; status=$$?; \
	$(VENV)/bin/gantune report --out report.html && \
	echo "open report.html in a browser; compare the trials in MLflow with: $(VENV)/bin/gantune ui"; \
	exit $$status

test: install browser
	$(PY) -m ruff check tuner trainables search_spaces tests bench
	$(PY) -m pytest -q -x -n 2 --dist loadgroup --durations=15

bench: install
	$(PY) bench/train_throughput.py
	$(PY) bench/sweep_overhead.py

clean:
	rm -rf $(VENV) runs sweeps mlflow.db mlartifacts report.html report_files
