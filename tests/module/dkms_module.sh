#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The module that DKMS built and installed on the host (scripts/dkms-check.sh),
# as a user would get it: it loads, serves a file, and unloads. Runs with no loop
# driver loaded and leaves none loaded.
. /tests/lib/ktap.sh
DKO=/tests/ko/rust_loop_dkms.ko

need_dkms_ko() {
	[ -f $DKO ] || skip "no DKMS-built module (the host-side dkms test did not produce one)"
}

test_01_dkms_module_is_rust_loop_for_this_kernel() {
	need_dkms_ko
	assert_eq "name" rust_loop "$(modinfo -F name $DKO)"
	local vm
	vm=$(modinfo -F vermagic $DKO)
	assert_eq "vermagic release" "$(uname -r)" "${vm%% *}"
}

test_02_dkms_module_loads_attaches_does_io_detaches_and_unloads() {
	need_dkms_ko
	local img dev
	insmod $DKO
	img=$(mkimg dkms.img 8M)
	pattern "$img" 1048576 65536 7
	dev=$(losetup -f --show "$img")
	assert_eq "read through $dev" "$(filesum "$img" 1048576 65536)" "$(rangesum "$dev" 1048576 65536)"
	pattern "$dev" 4096 8192 8
	sync
	assert_eq "written through $dev" "$(rangesum "$dev" 4096 8192)" "$(filesum "$img" 4096 8192)"
	losetup -d "$dev"
	rmmod rust_loop
	[ ! -d /sys/module/rust_loop ] || fail "rust_loop still loaded"
}

ktap_main dkms_module
