# SPDX-License-Identifier: GPL-2.0
# rust_loop: a loop block driver in Rust, built out of tree.
#
#   make          build rust_loop.ko against KDIR (default: the project's test kernel,
#                 set up and built on first use under ~/.cache/rust_loop)
#   make run      boot the test kernel in QEMU with rust_loop loaded and show it working
#   make check    the whole test suite in QEMU; last line "N passed, N failed"
#   make check-debug  the same suite on a debug kernel (KASAN, lockdep, kmemleak, ...)
#                 with a 10-minute stress test and GiBs of fio verify
#   make bench    benchmark vs loop.ko, dm-linear, ublk, raw device (QUICK=1: tiny)
#   make kdir     print the kernel build tree in use
#   make clippy   build with CLIPPY=1;  make fmt / make fmt-check: rustfmt
#
# For your own Rust-enabled kernel: make KDIR=/lib/modules/$(uname -r)/build LLVM=1

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
OWN_KDIR = $(shell $(ROOT)/scripts/kdir.sh)
KDIR ?=
LLVM ?= -19
RUST_LIB_SRC ?= $(shell . $(ROOT)/scripts/env.sh && RL_RUST_LIB_SRC)
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(KDIR),)
BUILD_KDIR = $(OWN_KDIR)
KERNEL_DEP = kernel
else
BUILD_KDIR = $(KDIR)
KERNEL_DEP =
endif

KMAKE = $(MAKE) -C $(BUILD_KDIR) M=$(ROOT) LLVM=$(LLVM) RUST_LIB_SRC=$(RUST_LIB_SRC)

.PHONY: all modules kernel setup kdir run check check-debug bench clippy fmt fmt-check clean

all: modules

modules: $(KERNEL_DEP)
	+$(KMAKE) modules

setup:
	$(ROOT)/scripts/setup.sh

kernel: setup
	$(ROOT)/scripts/build-kernel.sh

kdir:
	@echo $(if $(KDIR),$(KDIR),$(OWN_KDIR))

run: modules
	$(ROOT)/scripts/guest.sh run

check: modules
	$(ROOT)/scripts/check.sh

# The debug kernel is a second cached tree; rust_loop.ko is rebuilt against it (and
# back against the test kernel by the next plain `make`).
check-debug:
	+DEBUG=1 $(MAKE) -C $(ROOT) modules
	DEBUG=1 $(ROOT)/scripts/check.sh

bench: modules
	QUICK=$(QUICK) $(ROOT)/scripts/bench.sh

clippy: $(KERNEL_DEP)
	+$(KMAKE) CLIPPY=1 modules

fmt:
	rustfmt --config-path $(ROOT)/.rustfmt.toml $(ROOT)/rust_loop.rs

fmt-check:
	rustfmt --check --config-path $(ROOT)/.rustfmt.toml $(ROOT)/rust_loop.rs

clean:
	+$(KMAKE) clean
	rm -rf $(ROOT)/.out
