# Developer entry points for speaker.  The lab targets need root (network namespaces).
PYTHON ?= python3
MIX ?= seed
BACKEND ?= $(or $(SPEAKER_LAB_BACKEND),netns)

.PHONY: install lab lab-status lab-down test

install:
	$(PYTHON) -m pip install -e '.[test]'

# Namespace lab (default mix: speaker on .81, BIRD on .80/.82); `make lab MIX=bird` for all BIRD.
# `make lab BACKEND=docker`: BIRD nodes in Docker containers (docs/docker-lab.md).
lab: install
	$(PYTHON) -m integration.lab_up up --mix $(MIX) --backend $(BACKEND)

lab-status:
	$(PYTHON) -m integration.lab_up status

lab-down:
	$(PYTHON) -m integration.lab_up down

test: ; bash scripts/test.sh
