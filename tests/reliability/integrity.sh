#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Data integrity: fio writes random blocks (4-128 KiB, queue depth 16, two jobs)
# with crc32c verify headers through a loop device and reads every block back; then
# the device is detached and attached again and everything is verified once more, so
# the data must really be on the backing store. RL_VERIFY_MB per backing kind.
. /tests/lib/ktap.sh
MB=${RL_VERIFY_MB:-64}
REGION=$((MB < 128 ? MB : 128))
LOOPS=$(((MB + REGION - 1) / REGION))

# verify_through DEV: write+verify, then re-attach (same losetup args) and verify only.
fio_verify() { # DEV extra-fio-args...
	local dev=$1
	shift
	fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=16 \
		--rw=randwrite --bsrange=4k-128k --numjobs=2 --size=$((REGION / 2))M \
		--offset_increment=$((REGION / 2))M --verify=crc32c --verify_fatal=1 \
		--randseed=$seed --group_reporting --output-format=terse "$@" >"$WORK/fio.out" 2>&1 ||
		fail "fio verify failed: $(grep -iE 'verify|crc|bad|error' "$WORK/fio.out" | head -5)"
}
verify_path() { # KIND losetup-args...
	local kind=$1 dev i
	shift
	seed=$RANDOM
	dev=$(losetup -f --show "$@")
	for i in $(seq 1 $LOOPS); do
		seed=$((seed + 1))
		fio_verify "$dev"
	done
	losetup -d "$dev"
	dev=$(losetup -f --show "$@")
	fio_verify "$dev" --verify_only
	losetup -d "$dev"
	echo "# verified $kind [$LOOP_IMPL]: $((LOOPS * REGION)) MiB written and read back, then $REGION MiB again after re-attach, 0 bad blocks" >>"$WORK/.verified"
}

test_verify_file_backing_buffered() {
	verify_path "file (tmpfs, buffered)" "$(mkimg v.img ${REGION}M)"
	rm -f "$WORK/v.img"
}

test_verify_file_backing_direct_io() {
	mountpoint -q $SCRATCH || skip "no scratch filesystem"
	truncate -s ${REGION}M $SCRATCH/v.img
	verify_path "file (ext4, direct I/O, 4 KiB blocks)" --direct-io=on -b 4096 $SCRATCH/v.img
	rm -f $SCRATCH/v.img
}

test_verify_block_backing_at_offset() {
	nullb_make rlnbv 512 256 1 0 $((REGION + 2))
	verify_path "block device (null_blk, offset 1 MiB)" -o 1048576 --sizelimit ${REGION}M /dev/rlnbv
	nullb_rm rlnbv
}

rm -f "$WORK/.verified"
ktap_main integrity
[ -f "$WORK/.verified" ] && cat "$WORK/.verified"
true
