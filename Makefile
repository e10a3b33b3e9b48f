# SPDX-License-Identifier: GPL-2.0-or-later
#
# The two commands of the README:
#   make run    install what is missing (Debian 12), build, prepare the host,
#               start berth on its embedded default
#   make test   build and run every test suite; ends with `N passed, N failed`
# Everything real happens in meson (build/) and in tests/run-tests.sh.

BUILD ?= build
SHELL := /bin/bash

.PHONY: all deps build run test test-unprivileged bench clean

all: build

deps:
	@tools/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@tools/run.sh $(BUILD)

test: deps
	@tests/run-tests.sh

bench: build
	@tests/bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
