# Developer entry points for speaker: thin wrappers around the README's two scripts, which
# install what they need (Debian packages; the package in .venv/).  The lab targets need root.
MIX ?= seed
BACKEND ?= $(or $(SPEAKER_LAB_BACKEND),netns)
DATASTORE ?= none
STACK ?= ipv4

.PHONY: install lab lab-status lab-down test help

install:
	APT_PACKAGES="bird iproute2 nftables procps" bash -c 'set -euo pipefail; source scripts/bootstrap.sh'

# Namespace lab (default mix: speaker on .81, BIRD on .80/.82); `make lab MIX=bird` for all BIRD.
# `make lab BACKEND=docker`: BIRD nodes in Docker containers (docs/docker-lab.md).
# `make lab DATASTORE=etcd`: the mesh from Calico's etcd (etcd 3.4 with TLS in node80's
# namespace, BIRD's config rendered from its keys, the speaker with [datastore]; docs/datastore.md).
# `make lab STACK=dual`: IPv4 and IPv6, bird6 beside bird (docs/lab.md).
lab:
	$(if $(filter-out ipv4 dual,$(STACK)),$(error STACK=$(STACK): want ipv4 or dual))
	bash scripts/lab.sh --mix $(MIX) --backend $(BACKEND) --datastore $(DATASTORE) $(if $(filter dual,$(STACK)),--dual-stack)

lab-status: install
	.venv/bin/python -m integration.lab_up status

lab-down:
	bash scripts/lab.sh down

test: ; bash scripts/test.sh

help:
	@echo "make install                 Debian packages and the package in .venv/"
	@echo "make lab [MIX=seed|bird|speaker] [BACKEND=netns|docker] [DATASTORE=none|etcd]"
	@echo "         [STACK=ipv4|dual]   (dual: IPv6 too, bird6 beside bird; docs/lab.md)"
	@echo "                             the seed's 3-node mesh in namespaces, with its report"
	@echo "make lab-status              the report again;  make lab-down: tear the lab down"
	@echo "make test                    lint, type checks, unit tests, lab tests (root)"
