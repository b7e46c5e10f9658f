# Two commands do all set-up on a fresh machine:
#   make demo   install, build the emoji data set, train a small model for a few minutes, draw every class
#               with it and with the shipped model
#   make test   install (and Chromium, for the browser test) and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_KIMG ?= 4
SHIPPED := experiments/results/emoji32_cpu/cond_sg2_G_ema.pt
DEMO_RES ?= 32

.PHONY: install browser demo test test-fast bench clean-demo

$(VENV)/installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

install: $(VENV)/installed

# Chromium and its driver for tests/test_app.py, from apt when we can (Debian, as root); else the test skips.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Installing chromium and chromium-driver for the browser test (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
			|| echo "Could not install chromium; the browser test will be skipped"; \
	else echo "No chromium: the browser test will be skipped (install: apt-get install chromium chromium-driver)"; fi

# The demo: a few minutes of training (blobs), then the same seeds from the shipped model,
# trained for the whole emoji32_cpu comparison, so a newcomer sees what longer training gives.
demo: install
	$(PY) datasets/emoji.py --out all_styles.zip --resolution $(DEMO_RES) --preview all_styles_sheet.png --force
	$(PY) train.py --cond --data all_styles.zip --cfg small --mirror --kimg $(DEMO_KIMG) --tick 1 --snap 2 --outdir training-runs
	$(PY) generate.py --class all --seeds 0-15 --trunc 0.7 --grid --outdir out/demo/fresh
	@if [ -f $(SHIPPED) ]; then $(PY) generate.py --network $(SHIPPED) --class all --seeds 0-15 --trunc 0.7 --grid --outdir out/demo/shipped; fi
	@echo
	@echo "The data:  all_styles_sheet.png (one row per class)"
	@echo "Fresh:     out/demo/fresh/<class>/grid.png   the model just trained, $(DEMO_KIMG) kimg (training-runs/: reals.png, fakes*.png)"
	@if [ -f $(SHIPPED) ]; then echo "Shipped:   out/demo/shipped/<class>/grid.png the shipped model $(SHIPPED), same seeds, trained far longer"; \
	else echo "Shipped:   none yet ($(SHIPPED) is committed when the emoji32_cpu comparison has run)"; fi

test: install browser
	$(PY) -m pytest -q

# While working on the code: everything but the tests marked slow (3.5 minutes on 2 cores; CI runs make test).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) benchmarks/train_speed.py
