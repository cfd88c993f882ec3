# SPDX-License-Identifier: GPL-2.0
# rust_loop: a loop block driver in Rust, built out of tree.
#
#   make          build rust_loop.ko against KDIR (default: the project's test kernel,
#                 set up and built on first use under ~/.cache/rust_loop)
#   make run      boot the test kernel in QEMU with rust_loop loaded and show it working
#   make check    the whole test suite in QEMU; last line "N passed, N failed"
#   make check-debug  the same suite on a debug kernel (KASAN, lockdep, kmemleak, ...)
#                 with a 10-minute stress test and GiBs of fio verify
#   make smoke    build, boot, load, attach, I/O, detach, unload: a short KTAP run
#   make bench    benchmark vs loop.ko, dm-linear, ublk, raw device (QUICK=1: tiny)
#   make kdir     print the kernel build tree in use
#   make clippy   build with CLIPPY=1;  make fmt / make fmt-check: rustfmt
#   make install       modules_install (under updates/) + depmod
#   make dkms-install  register with DKMS, build and install for KDIR's kernel
#   make dkms-remove   remove it from DKMS again (every kernel)
#
# KVER=7.2 selects the project's Linux 7.2 test kernel instead of 7.3 (default).
# For your own Rust-enabled kernel: make KDIR=/lib/modules/$(uname -r)/build
# (LLVM= is taken from the kernel's .config by scripts/llvm.sh; override with LLVM=).
# The install targets write to the system's trees for KDIR's kernel; for the
# project's test kernel (no KDIR), which only boots in QEMU, they stage under
# .out/root instead (DKMS_ROOT= / INSTALL_MOD_PATH= override either way).

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
KVER ?= 7.3
export KVER
OWN_KDIR = $(shell KVER=$(KVER) $(ROOT)/scripts/kdir.sh)
KDIR ?=
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(KDIR),)
BUILD_KDIR = $(OWN_KDIR)
KERNEL_DEP = kernel
STAGE = $(ROOT)/.out/root
else
BUILD_KDIR = $(KDIR)
KERNEL_DEP =
STAGE =
endif
DKMS_ROOT ?= $(STAGE)
INSTALL_MOD_PATH ?= $(STAGE)

# Evaluated when a recipe runs, i.e. after the kernel prerequisite is built.
LLVM ?= $(shell $(ROOT)/scripts/llvm.sh $(BUILD_KDIR))
RUST_LIB_SRC ?= $(shell . $(ROOT)/scripts/env.sh && d=$$(RL_RUST_LIB_SRC) && [ -d "$$d" ] && echo "$$d")

KMAKE = $(MAKE) -C $(BUILD_KDIR) M=$(ROOT) LLVM=$(LLVM) $(if $(RUST_LIB_SRC),RUST_LIB_SRC=$(RUST_LIB_SRC))

.PHONY: all modules kernel setup kdir run check check-debug smoke bench clippy fmt fmt-check \
	clean install dkms-install dkms-remove

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

smoke: modules
	$(ROOT)/scripts/check.sh smoke

bench: modules
	QUICK=$(QUICK) $(ROOT)/scripts/bench.sh

clippy: $(KERNEL_DEP)
	+$(KMAKE) CLIPPY=1 modules

# modules_install puts the module under updates/ (Kbuild's default for external
# modules) and runs depmod only where the tree has System.map, so depmod again.
install: modules
	+$(KMAKE) $(if $(INSTALL_MOD_PATH),INSTALL_MOD_PATH=$(INSTALL_MOD_PATH)) modules_install
	depmod -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $$(cat $(BUILD_KDIR)/include/config/kernel.release)

dkms-install: $(KERNEL_DEP)
	$(ROOT)/scripts/dkms.sh install $(BUILD_KDIR) $(DKMS_ROOT)

dkms-remove:
	$(ROOT)/scripts/dkms.sh remove - $(DKMS_ROOT)

fmt:
	rustfmt --config-path $(ROOT)/.rustfmt.toml $(ROOT)/rust_loop.rs

fmt-check:
	rustfmt --check --config-path $(ROOT)/.rustfmt.toml $(ROOT)/rust_loop.rs

clean:
	+$(KMAKE) clean
	rm -rf $(ROOT)/.out
