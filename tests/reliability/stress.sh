#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Stress: many processes, privileged and not, racing every loop operation and random
# ioctls on the same few devices for RL_STRESS_SECS seconds (tests/tools/stress.c).
# Afterwards every device must detach, and the module must unload and load again.
. /tests/lib/ktap.sh
SECS=${RL_STRESS_SECS:-60}
NDEV=6

# Backing files: plain ones, one with a partition table (rescans make partitions),
# and one on the scratch ext4 so direct I/O takes the async path.
stress_files() {
	local f
	for f in s0 s1 s2; do mkimg $f.img 16M; done
	printf 'label: dos\n,4M,L\n,4M,L\n' | sfdisk -q "$WORK/s2.img" >/dev/null
	if mountpoint -q $SCRATCH; then
		truncate -s 16M $SCRATCH/stress.img
		echo $SCRATCH/stress.img
	fi
}

test_stress_every_operation_in_parallel() {
	local files out i
	files=$(stress_files)
	for i in $(seq 0 $((NDEV - 1))); do "$LOOPCTL" ctl-add $i >/dev/null; done
	out=$(/tests/bin/stress "$SECS" $NDEV $files 2>&1) || fail "stress failed: $out"
	echo "# stress ${SECS}s: $(tail -1 <<<"$out")" >"$WORK/.stress-summary"
	# Every device detaches (a lazy detach runs at the last close, which is now).
	losetup -D
	for i in $(seq 0 $((NDEV + 3))); do
		[ -b /dev/loop$i ] || continue
		"$LOOPCTL" clr-fd /dev/loop$i >/dev/null
		[ ! -e /sys/block/loop$i/loop/backing_file ] || fail "loop$i still bound after the stress"
		[ "$(cat /sys/block/loop$i/size)" = 0 ] || fail "loop$i has a size after detach"
	done
	rm -f $SCRATCH/stress.img
}

test_module_unloads_and_loads_after_stress() {
	local ko=/tests/ko/$LOOP_IMPL.ko
	[ "$LOOP_IMPL" = rust_loop ] || ko=/tests/ko/loop.ko
	rmmod "$LOOP_IMPL" || fail "rmmod after the stress: $(lsmod | grep -w "$LOOP_IMPL")"
	insmod "$ko" || fail "insmod again failed"
	dev=$(losetup -f --show "$(mkimg a.img 4M)")
	echo hello | dd of="$dev" conv=fsync status=none
	losetup -d "$dev"
}

ktap_main stress
[ -f "$WORK/.stress-summary" ] && cat "$WORK/.stress-summary"
