#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host side of the DKMS test (make check, make smoke): `make dkms-install` and
# `make dkms-remove` against the project's kernel build tree, with DKMS's source,
# dkms and install trees under OUTDIR/root (the host's /usr/src, /var/lib/dkms and
# /lib/modules are not touched), then `make install` into OUTDIR/install-root.
# Prints a KTAP stream on stdout (chatter on stderr) and leaves the module that
# DKMS built and installed in OUTDIR/rust_loop_dkms.ko for the guest, which loads
# it (tests/module/dkms_module.sh).
#   dkms-check.sh OUTDIR
set -uo pipefail
. "$(dirname "$0")/env.sh"
out=$1
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
B=$(RL_KBUILD)
root=$out/root
kver=$(cat "$B/include/config/kernel.release" 2>/dev/null)
ko=$root/lib/modules/$kver/updates/dkms/rust_loop.ko

n=0
results=()
result() { # ok|fail NAME [diagnostic lines on stdin when failing]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		results+=("ok $n $2")
	else
		results+=("not ok $n $2" "$(sed 's/^/# /' | tail -20)")
	fi
}
check() { # NAME COMMAND...: the test passes when COMMAND succeeds
	local name=$1
	shift
	if "$@" >"$out/$name.log" 2>&1; then
		result ok "$name"
	else
		result fail "$name" <"$out/$name.log"
	fi
}
mk() { make -C "$RL_ROOT" KDIR="$B" "$@"; }

installed() {
	mk dkms-install DKMS_ROOT="$root" || return 1
	[ -f "$ko" ] || { echo "no $ko"; find "$root/lib/modules" -name '*.ko*'; return 1; }
	cp "$ko" "$out/rust_loop_dkms.ko"
}
built_for_this_kernel() {
	local log=$root/var/lib/dkms/rust_loop/$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$RL_ROOT/dkms.conf")/$kver/$(uname -m)/log/make.log
	cat "$log"
	grep -q "LLVM=$("$RL_ROOT/scripts/llvm.sh" "$B") " "$log" || { echo "make.log: not built with scripts/llvm.sh's LLVM="; return 1; }
	grep -q "RUSTC \[M\] rust_loop_crate.o" "$log" || { echo "make.log: no rustc of the crate"; return 1; }
	local vm
	vm=$(modinfo -F vermagic "$ko")
	[ "${vm%% *}" = "$kver" ] || { echo "vermagic '$vm', kernel $kver"; return 1; }
}
depmod_lists() { # yes|no
	local dep=$root/lib/modules/$kver/modules.dep
	cat "$dep"
	if [ "$1" = yes ]; then grep -q '^updates/dkms/rust_loop.ko:' "$dep"; else ! grep -q 'rust_loop' "$dep"; fi
}
status_installed() {
	dkms status --sourcetree "$root/usr/src" --dkmstree "$root/var/lib/dkms" --installtree "$root/lib/modules" rust_loop |
		tee /dev/stderr | grep -q "rust_loop/.*, $kver, .*: installed"
}
removed() {
	mk dkms-remove DKMS_ROOT="$root" || return 1
	[ ! -e "$ko" ] || { echo "$ko still there"; return 1; }
	! find "$root/usr/src" "$root/var/lib/dkms" -mindepth 1 | grep . || { echo "(left behind)"; return 1; }
}
make_install() {
	local r=$out/install-root
	mk install INSTALL_MOD_PATH="$r" || return 1
	[ -f "$r/lib/modules/$kver/updates/rust_loop.ko" ] || { find "$r"; return 1; }
	grep -q '^updates/rust_loop.ko:' "$r/lib/modules/$kver/modules.dep" || { cat "$r/lib/modules/$kver/modules.dep"; return 1; }
}

if [ -z "$kver" ]; then
	result fail dkms_kernel_tree_present <<<"no kernel build tree at $B"
elif ! command -v dkms >/dev/null; then
	result fail dkms_is_installed <<<"dkms not found (scripts/setup.sh installs it)"
else
	check dkms_install_adds_builds_and_installs installed
	if [ -f "$out/rust_loop_dkms.ko" ]; then
		check dkms_build_uses_llvm_sh_and_matches_the_kernel built_for_this_kernel
		check dkms_install_puts_module_under_updates_and_runs_depmod depmod_lists yes
		check dkms_status_says_installed status_installed
		check dkms_remove_deletes_module_sources_and_depmod_entry removed
		check dkms_remove_depmod_forgets_the_module depmod_lists no
	fi
	check make_install_runs_modules_install_and_depmod make_install
fi

echo "KTAP version 1"
echo "# suite: dkms (host, kernel $kver)"
echo "1..$n"
printf '%s\n' "${results[@]}"
