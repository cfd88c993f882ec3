#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run by DKMS (dkms.conf: MAKE, CLEAN) in its copy of the sources: build or clean
# rust_loop for kernel build tree $1 with the project's Makefile and Kbuild.
#   dkms-make.sh KDIR [clean] [VAR=value...]
# The VAR=value arguments DKMS appends (CC=clang LD=ld.lld for a clang-built
# kernel) are dropped: LLVM= (scripts/llvm.sh, from the kernel's .config) picks the
# whole toolchain, versioned (clang-19) or not.
set -eu
kdir=$1
shift
target=modules
for a in "$@"; do
	case "$a" in
	clean) target=clean ;;
	*=*) echo "dkms-make.sh: not passing $a (LLVM=$("$(dirname "$0")/llvm.sh" "$kdir") decides)" ;;
	*) echo "dkms-make.sh: ignoring $a" ;;
	esac
done
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL
exec make KDIR="$kdir" "$target"
