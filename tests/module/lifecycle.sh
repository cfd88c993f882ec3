#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Module lifecycle of rust_loop.ko: registration, aliases, conflicts with loop.ko,
# unload. Runs with no loop driver loaded and leaves none loaded.
. /tests/lib/ktap.sh
KO=/tests/ko

test_01_insmod_succeeds() {
	insmod $KO/rust_loop.ko
	[ -d /sys/module/rust_loop ] || fail "no /sys/module/rust_loop"
}

test_02_proc_devices_lists_block_major_7_loop() {
	awk '/^Block devices:/ {b = 1} b && $1 == 7 && $2 == "loop" {f = 1} END {exit !f}' /proc/devices ||
		fail "$(cat /proc/devices)"
}

test_03_loop_control_is_misc_10_237() {
	[ -c /dev/loop-control ] || fail "/dev/loop-control missing or not a char device"
	assert_eq "major:minor (hex)" "a:ed" "$(stat -c '%t:%T' /dev/loop-control)"
	grep -qE '^237 loop-control$' /proc/misc || fail "$(cat /proc/misc)"
}

test_04_modinfo_license_description_and_aliases() {
	local mi
	mi=$(modinfo $KO/rust_loop.ko)
	echo "$mi" | grep -qE '^license: +GPL$' || fail "license: $mi"
	echo "$mi" | grep -qE '^description: +.+' || fail "description missing"
	for a in devname:loop-control char-major-10-237 'block-major-7-\*'; do
		echo "$mi" | grep -qE "^alias: +$a\$" || fail "alias $a missing"
	done
}

test_05_loop_control_answers_get_free() {
	local r
	r=$("$LOOPCTL" ctl-get-free)
	case "$r" in OK*) ;; *) fail "LOOP_CTL_GET_FREE: $r" ;; esac
	n=${r#OK }
	[ -b /dev/loop$n ] || fail "GET_FREE returned $n but /dev/loop$n is no block device"
}

test_06_unknown_control_ioctl_is_enosys() {
	local r
	r=$("$LOOPCTL" raw /dev/loop-control 0x4C8F 0)
	assert_eq "unknown loop-control ioctl" ENOSYS "$r"
}

test_07_refcount_zero_when_idle() {
	assert_eq "refcnt" 0 "$(cat /sys/module/rust_loop/refcnt)"
}

test_08_rmmod_leaves_nothing_behind() {
	rmmod rust_loop
	[ ! -d /sys/module/rust_loop ] || fail "/sys/module/rust_loop still there"
	! awk '/^Block devices:/ {b = 1} b && $1 == 7 {f = 1} END {exit !f}' /proc/devices ||
		fail "major 7 still registered"
	! grep -qE '^237 ' /proc/misc || fail "misc minor 237 still registered"
	[ ! -e /dev/loop-control ] || fail "/dev/loop-control still there"
	[ -z "$(ls /sys/block | grep '^loop')" ] || fail "disks left: $(ls /sys/block)"
}

test_09_insmod_fails_cleanly_while_loop_ko_holds_major_7() {
	insmod $KO/loop.ko
	dmesg -C
	if insmod $KO/rust_loop.ko 2>/dev/null; then
		rmmod rust_loop
		rmmod loop
		fail "rust_loop.ko loaded next to loop.ko"
	fi
	dmesg | grep -q 'rust_loop: .*loop.ko' || { dmesg >&2; rmmod loop; fail "no message naming the cause"; }
	[ ! -d /sys/module/rust_loop ] || fail "half-loaded module"
	rmmod loop
	# And it loads again once loop.ko is gone.
	insmod $KO/rust_loop.ko
	rmmod rust_loop
}

test_10_load_unload_cycles() {
	local i
	for i in 1 2 3 4 5; do
		insmod $KO/rust_loop.ko
		"$LOOPCTL" ctl-add $((i + 10)) >/dev/null
		rmmod rust_loop
	done
	[ ! -d /sys/module/rust_loop ]
}

ktap_main module_lifecycle
