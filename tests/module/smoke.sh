#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The smoke test (make smoke; CI runs it on the second supported kernel): load
# rust_loop.ko, attach a file, data both ways, ext4 through mount -o loop, detach,
# unload. The full suite (make check) covers each of these in depth.
. /tests/lib/ktap.sh
KO=/tests/ko
tag=" ($(uname -r))"

test_01_insmod_registers_major_7_and_loop_control() {
	insmod $KO/rust_loop.ko
	awk '/^Block devices:/ {b = 1} b && $1 == 7 && $2 == "loop" {f = 1} END {exit !f}' /proc/devices ||
		fail "$(cat /proc/devices)"
	assert_eq "loop-control major:minor (hex)" "a:ed" "$(stat -c '%t:%T' /dev/loop-control)"
}

test_02_losetup_attaches_a_file_and_data_goes_both_ways() {
	local img dev
	img=$(mkimg smoke.img 16M)
	pattern "$img" 0 65536 1
	dev=$(losetup -f --show "$img")
	assert_eq "size" 16777216 "$(blockdev --getsize64 "$dev")"
	assert_eq "read" "$(filesum "$img" 0 65536)" "$(rangesum "$dev" 0 65536)"
	pattern "$dev" 1048576 131072 2
	sync
	assert_eq "write" "$(rangesum "$dev" 1048576 131072)" "$(filesum "$img" 1048576 131072)"
	losetup -d "$dev"
}

test_03_mount_o_loop_ext4_and_autoclear_at_umount() {
	local img
	img=$(mkimg smoke-ext4.img 32M)
	mkfs.ext4 -q -F "$img"
	mkdir -p /mnt/rl-smoke
	mount -o loop "$img" /mnt/rl-smoke
	dd if=/dev/urandom of=/mnt/rl-smoke/f bs=64k count=16 status=none
	local sum
	sum=$(sha256sum </mnt/rl-smoke/f)
	umount /mnt/rl-smoke
	[ -z "$(losetup -j "$img")" ] || fail "still attached after umount: $(losetup -j "$img")"
	mount -o loop,ro "$img" /mnt/rl-smoke
	assert_eq "file after remount" "$sum" "$(sha256sum </mnt/rl-smoke/f)"
	umount /mnt/rl-smoke
	e2fsck -fn "$img" >/dev/null || fail "e2fsck found errors"
}

test_04_rmmod_leaves_nothing_behind() {
	rmmod rust_loop
	[ ! -d /sys/module/rust_loop ] || fail "/sys/module/rust_loop still there"
	[ ! -e /dev/loop-control ] || fail "/dev/loop-control still there"
}

ktap_main "smoke$tag"
