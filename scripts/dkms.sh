#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make dkms-install` / `make dkms-remove`.
#   dkms.sh install KDIR [ROOT]  copy the module's sources to DKMS's source tree as
#                                rust_loop-<version> (dkms.conf), then dkms add,
#                                build and install for the kernel of build tree KDIR
#                                (module under updates/, depmod)
#   dkms.sh remove - [ROOT]      dkms remove for every kernel, sources deleted
# ROOT empty: the system's trees (/usr/src, /var/lib/dkms, /lib/modules; root
# needed). ROOT set: ROOT/usr/src, ROOT/var/lib/dkms, ROOT/lib/modules, and depmod
# -b ROOT: nothing outside ROOT changes (the test kernel's staging, the tests).
# DKMS later rebuilds the module by itself for every kernel installed (AUTOINSTALL)
# through scripts/dkms-make.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '[dkms.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

action=$1 kdir=${2:--} root=${3:-}
command -v dkms >/dev/null || die "dkms is not installed (Debian/Ubuntu: apt install dkms)"
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"/\1/p' "$here/dkms.conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms.conf")
trees=()
srctree=/usr/src
if [ -n "$root" ]; then
	mkdir -p "$root"
	root=$(cd "$root" && pwd)
	srctree=$root/usr/src
	trees=(--sourcetree "$srctree" --dkmstree "$root/var/lib/dkms" --installtree "$root/lib/modules" --no-depmod)
	mkdir -p "$srctree" "$root/var/lib/dkms" "$root/lib/modules"
fi
# DKMS runs make itself; jobserver file descriptors of an outer make are not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL
dk() { dkms "$@" "${trees[@]}"; }
depmod_root() { # KERNELRELEASE
	[ -z "$root" ] || depmod -a -b "$root" "$1"
}
added() { dk status -m "$name" -v "$ver" 2>/dev/null | grep -q .; }

remove() {
	local k
	if added; then
		dk remove -m "$name" -v "$ver" --all
		if [ -n "$root" ]; then
			for k in "$root"/lib/modules/*/; do
				[ -d "$k" ] && depmod_root "$(basename "$k")"
			done
		fi
	fi
	rm -rf "${srctree:?}/$name-$ver"
}

case "$action" in
install)
	[ -f "$kdir/include/config/kernel.release" ] || die "$kdir is no configured kernel build tree"
	grep -q '^CONFIG_RUST=y' "$kdir/.config" 2>/dev/null ||
		die "$kdir: no CONFIG_RUST=y; this kernel cannot load Rust modules"
	[ -f "$kdir/rust/libkernel.rmeta" ] ||
		die "$kdir has no rust/libkernel.rmeta: its build tree lacks the Rust metadata that out-of-tree Rust modules are compiled against (distro header packages such as Debian's linux-headers do); build against the kernel's full build tree"
	kver=$(cat "$kdir/include/config/kernel.release")
	remove # a fresh copy of the sources: reinstalling after a change works
	dst=$srctree/$name-$ver
	log "sources -> $dst"
	mkdir -p "$dst"
	(cd "$here" && cp -r Kbuild Makefile dkms.conf ./*.rs ./*.c ./*.h kapi scripts "$dst/")
	dk add -m "$name" -v "$ver"
	dk build -m "$name" -v "$ver" -k "$kver" --kernelsourcedir "$kdir" ||
		{
			cat "${root:+$root}/var/lib/dkms/$name/$ver/build/make.log" >&2 2>/dev/null || true
			die "dkms build failed"
		}
	if [ -n "$root" ]; then
		# What depmod reads besides the modules, as modules_install would leave it.
		mkdir -p "$root/lib/modules/$kver"
		for f in modules.builtin modules.builtin.modinfo; do
			[ -f "$kdir/$f" ] && cp "$kdir/$f" "$root/lib/modules/$kver/"
		done
		touch "$root/lib/modules/$kver/modules.order"
	fi
	dk install -m "$name" -v "$ver" -k "$kver" --kernelsourcedir "$kdir"
	depmod_root "$kver"
	dk status -m "$name" -v "$ver"
	;;
remove)
	remove
	if [ -n "$root" ] && dkms status -m "$name" -v "$ver" 2>/dev/null | grep -q .; then
		log "removed from $root only; $name/$ver is also registered with the system's DKMS:" \
			"sudo make dkms-remove KDIR=/lib/modules/<release>/build (any KDIR) removes it"
	fi
	;;
*)
	die "usage: dkms.sh install KDIR [ROOT] | dkms.sh remove - [ROOT]"
	;;
esac
