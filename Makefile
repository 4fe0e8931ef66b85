# The two commands of the README, each doing all set-up itself on a fresh machine of this kind:
#   make demo    the whole pipeline on the embedded default, with a report
#   make test    the test suite (starts and stops its own Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set)
# `make setup` only prepares: .venv, Debian tools (kcat, prometheus), Kafka jars (deploy/local/bootstrap.sh).

SHELL := /bin/bash
VENV := .venv
# A generous per-test deadline: a hung test fails with a traceback instead of hanging CI.
PYTEST_TIMEOUT ?= 600
PYTEST_ARGS ?=

.PHONY: setup demo test chaos broker-start broker-stop clean

setup:
	bash deploy/local/bootstrap.sh

demo: setup
	$(VENV)/bin/touchpoint demo

test: setup
	$(VENV)/bin/pytest tests --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

# Fault figures on the real broker (minutes per fault; not part of `make test`): see README "Fault figures".
chaos: setup
	TOUCHPOINT_CHAOS=1 $(VENV)/bin/pytest tests/chaos -x -s -p no:cacheprovider --basetemp=$(CURDIR)/.touchpoint/chaos/tmp --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)
	$(VENV)/bin/python -m tests.chaos.report

broker-start: setup
	$(VENV)/bin/touchpoint broker start

broker-stop:
	$(VENV)/bin/touchpoint broker stop

# Local state only (.touchpoint: broker data, embedded ClickHouse); the jar cache and .venv stay.
clean:
	-$(VENV)/bin/touchpoint broker stop
	rm -rf .touchpoint .pytest_cache
