# Developer entry points for speaker: thin wrappers around the README's two scripts, which
# install what they need (Debian packages; the package in .venv/).  The lab targets need root.
MIX ?= seed
BACKEND ?= $(or $(SPEAKER_LAB_BACKEND),netns)

.PHONY: install lab lab-status lab-down test

install:
	APT_PACKAGES="bird iproute2 nftables procps" bash -c 'set -euo pipefail; source scripts/bootstrap.sh'

# Namespace lab (default mix: speaker on .81, BIRD on .80/.82); `make lab MIX=bird` for all BIRD.
# `make lab BACKEND=docker`: BIRD nodes in Docker containers (docs/docker-lab.md).
lab:
	bash scripts/lab.sh --mix $(MIX) --backend $(BACKEND)

lab-status: install
	.venv/bin/python -m integration.lab_up status

lab-down:
	bash scripts/lab.sh down

test: ; bash scripts/test.sh
