# Developer entry points for speaker: thin wrappers around the README's two scripts, which
# install what they need (Debian packages; the package in .venv/).  The lab targets need root.
MIX ?= seed
BACKEND ?= $(or $(SPEAKER_LAB_BACKEND),netns)
STACK ?= ipv4

.PHONY: install lab lab-status lab-down test

install:
	APT_PACKAGES="bird iproute2 nftables procps" bash -c 'set -euo pipefail; source scripts/bootstrap.sh'

# Namespace lab (default mix: speaker on .81, BIRD on .80/.82); `make lab MIX=bird` for all BIRD.
# `make lab BACKEND=docker`: BIRD nodes in Docker containers (docs/docker-lab.md).
# `make lab STACK=dual`: IPv4 and IPv6, bird6 beside bird (docs/lab.md).
lab:
	$(if $(filter-out ipv4 dual,$(STACK)),$(error STACK=$(STACK): want ipv4 or dual))
	bash scripts/lab.sh --mix $(MIX) --backend $(BACKEND) $(if $(filter dual,$(STACK)),--dual-stack)

lab-status: install
	.venv/bin/python -m integration.lab_up status

lab-down:
	bash scripts/lab.sh down

test: ; bash scripts/test.sh
