# Sesame: a thin wrapper over CMake. `make run` and `make test` work on a fresh Debian 12
# machine as root: both install what is needed first (scripts/install-deps.sh).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
VAR ?= var
PORT_BASE ?= 4500
PYTHON := /usr/bin/python3

.PHONY: all deps build build-asan build-fuzz run test unit e2e fuzz bench format clean

all: build

deps:
	./scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSESAME_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)

build-fuzz:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSESAME_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)

# Creates ./var on first use, prints the endpoints and credentials, runs in the foreground.
run: deps build
	@if [ ! -f $(VAR)/sesame.conf ]; then ./$(BUILD)/sesame init --dir $(VAR) --port-base $(PORT_BASE); fi
	@echo "== endpoints and credentials ($(VAR)/endpoints, $(VAR)/credentials) =="
	@cat $(VAR)/endpoints
	@cat $(VAR)/credentials
	@echo "== try: AWS_SHARED_CREDENTIALS_FILE=$(VAR)/credentials aws ses get-send-quota --endpoint-url http://127.0.0.1:$(PORT_BASE)"
	./$(BUILD)/sesamed -c $(VAR)/sesame.conf

unit: build build-asan
	cd $(BUILD) && ctest --output-on-failure
	cd build-asan && ctest --output-on-failure

# End-to-end: real clients against a real sesamed, both the release and the ASan/UBSan build.
# The two runs go side by side (most of a test is waiting on sockets and timers), each
# into its own log, printed when both are done, each with ports of its own (two runs
# picking from one range collided); either failing fails the target.
e2e: build build-asan
	@SESAME_E2E_PORTS=10000-21000 SESAME_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e \
	    >$(BUILD)/e2e.log 2>&1 & rel=$$!; \
	SESAME_E2E_PORTS=21000-32000 SESAME_BUILD=$(CURDIR)/build-asan $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e \
	    >build-asan/e2e.log 2>&1 & asan=$$!; \
	wait $$rel; rs=$$?; wait $$asan; as=$$?; \
	echo "== e2e, release build ($(BUILD)) =="; cat $(BUILD)/e2e.log; \
	echo "== e2e, ASan+UBSan build (build-asan) =="; cat build-asan/e2e.log; \
	test $$rs -eq 0 && test $$as -eq 0

fuzz: build-fuzz
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

test: deps
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECONDS=10
	$(MAKE) e2e

bench: deps build
	./bench/run.sh
	./bench/smtp.sh
	./bench/delivery.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
