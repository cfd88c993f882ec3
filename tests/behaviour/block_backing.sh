#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Block-device backing: bios remapped onto the backing device (rust_loop), the
# backing device's queue limits inherited, data at the right place both ways.
. /tests/lib/ktap.sh
STATS=/sys/kernel/debug/rust_loop/stats

# Queue attributes that must equal the backing device's (the stacking limits).
LIMITS="logical_block_size physical_block_size minimum_io_size optimal_io_size
	max_hw_sectors_kb max_sectors_kb max_segments max_segment_size rotational
	discard_granularity discard_max_hw_bytes write_zeroes_max_bytes write_cache fua
	dma_alignment virt_boundary_mask"
limits_equal() { # LOOPDEV BACKINGNAME
	local a bad=
	for a in $LIMITS; do
		[ -e /sys/block/$2/queue/$a ] || continue
		[ "$(sysblk "$1" queue/$a)" = "$(cat /sys/block/$2/queue/$a)" ] ||
			bad="$bad $a:$(sysblk "$1" queue/$a)!=$(cat /sys/block/$2/queue/$a)"
	done
	[ -z "$bad" ] || fail "limits differ from $2:$bad"
}

test_queue_limits_are_inherited_from_backing_device() {
	[ "$LOOP_IMPL" = loop ] && skip "loop.ko does not inherit the backing device's limits (rust_loop feature)"
	local dev
	nullb_make rlnb1 4096 64 1 1
	dev=$(losetup -f --show /dev/rlnb1)
	limits_equal "$dev" rlnb1
	losetup -d "$dev"
	nullb_rm rlnb1
}

test_queue_limits_are_inherited_from_virtio_disk() {
	[ "$LOOP_IMPL" = loop ] && skip "loop.ko does not inherit the backing device's limits (rust_loop feature)"
	[ -b /dev/vda ] || skip "no virtio disk"
	local dev
	dev=$(losetup -f --show /dev/vda)
	limits_equal "$dev" vda
	losetup -d "$dev"
}

test_data_lands_at_offset_plus_position_both_ways() {
	local dev off
	nullb_make rlnb2 512 1024 0 0
	for off in 0 4096 1048576; do
		dev=$(losetup -f --show -o $off --sizelimit $((16 << 20)) /dev/rlnb2)
		pattern "$dev" 8192 131072 $((off + 1))
		sync
		blockdev --flushbufs "$dev"
		assert_eq "off=$off: loop -> backing" "$(rangesum "$dev" 8192 131072)" "$(rangesum /dev/rlnb2 $((off + 8192)) 131072)"
		pattern /dev/rlnb2 $((off + 1048576)) 65536 $((off + 7))
		sync
		blockdev --flushbufs /dev/rlnb2
		blockdev --flushbufs "$dev"
		assert_eq "off=$off: backing -> loop" "$(rangesum /dev/rlnb2 $((off + 1048576)) 65536)" "$(rangesum "$dev" 1048576 65536)"
		losetup -d "$dev"
	done
	nullb_rm rlnb2
}

test_discard_reaches_backing_device() {
	[ "$LOOP_IMPL" = loop ] && skip "loop.ko turns discard on a block device into write-zeroes (no discard limits without them)"
	local dev zero
	nullb_make rlnb3 4096 1024 1 0
	dev=$(losetup -f --show -o 1048576 /dev/rlnb3)
	dd if=/dev/urandom of="$dev" bs=1M count=4 oflag=direct status=none
	blkdiscard -o 1048576 -l 1048576 "$dev"
	zero=$(head -c 1048576 /dev/zero | sha256sum | cut -c1-16)
	assert_eq "discarded range on backing" "$zero" "$(rangesum /dev/rlnb3 $((2 << 20)) 1048576)"
	[ "$(rangesum /dev/rlnb3 $((1 << 20)) 1048576)" != "$zero" ] || fail "neighbouring data discarded too"
	losetup -d "$dev"
	nullb_rm rlnb3
}

test_write_zeroes_reach_backing_device() {
	local dev zero
	nullb_make rlnb4 512 1024 0 0
	dev=$(losetup -f --show /dev/rlnb4)
	dd if=/dev/urandom of="$dev" bs=1M count=4 oflag=direct status=none
	blkdiscard -z -o 1048576 -l 1048576 "$dev"
	zero=$(head -c 1048576 /dev/zero | sha256sum | cut -c1-16)
	assert_eq "zeroed range on backing" "$zero" "$(rangesum /dev/rlnb4 $((1 << 20)) 1048576)"
	losetup -d "$dev"
	nullb_rm rlnb4
}

test_remapped_one_mib_read_moves_one_mib_once() {
	[ -r $STATS ] || skip "no per-device counters in $LOOP_IMPL"
	local dev b0 s0
	nullb_make rlnb5 512 2048 0 0
	dev=$(losetup -f --show /dev/rlnb5)
	b0=$(sed -n "s/^${dev#/dev/} .*bytes=\([0-9]*\).*/\1/p" $STATS)
	s0=$(sed -n "s/^${dev#/dev/} .*segments=\([0-9]*\).*/\1/p" $STATS)
	dd if="$dev" of=/dev/null bs=1M count=1 iflag=direct status=none
	assert_eq "bytes" 1048576 $(($(sed -n "s/^${dev#/dev/} .*bytes=\([0-9]*\).*/\1/p" $STATS) - b0))
	[ $(($(sed -n "s/^${dev#/dev/} .*segments=\([0-9]*\).*/\1/p" $STATS) - s0)) -ge 1 ] || fail "no clone counted"
	losetup -d "$dev"
	nullb_rm rlnb5
}

inline_of() { # DEV: requests of DEV served in ->queue_rq, no hand-off
	sed -n "s/^${1#/dev/} .*inline=\([0-9]*\).*/\1/p" $STATS
}
requests_of() { # DEV
	sed -n "s/^${1#/dev/} .*requests=\([0-9]*\).*/\1/p" $STATS
}
deep_reads() { # DEV MiB: 4 KiB random direct reads at depth 32
	fio --name=deep --filename="$1" --rw=randread --bs=4k --direct=1 --ioengine=libaio \
		--iodepth=32 --io_size=${2}m --norandommap --randrepeat=0 --output=/dev/null ||
		fail "fio at depth 32 on $1 failed"
}
# DEV MiB: 1 MiB of deep reads (rust_loop measures the backing device), then MiB
# more, of which R requests, N served in ->queue_rq. Detaches DEV.
deep_share() {
	local i0 r0
	deep_reads "$1" 1
	i0=$(inline_of "$1") r0=$(requests_of "$1")
	deep_reads "$1" "$2"
	N=$(($(inline_of "$1") - i0)) R=$(($(requests_of "$1") - r0))
	echo "# $N of $R reads at depth 32 remapped in ->queue_rq"
	losetup -d "$1"
	[ $R -ge $(($2 * 256)) ] || fail "only $R requests for $2 MiB of 4 KiB reads"
}

# slow_nullb NAME SIZE_MB [HW_QUEUE_DEPTH]: a null_blk that takes 5 ms per request
# (timer mode, no memory behind it), as a disk or a network volume.
slow_nullb() {
	local d=$NULLB_CFG/$1
	rmdir $d 2>/dev/null || true
	mkdir $d
	echo 2 >$d/irqmode
	echo 5000000 >$d/completion_nsec
	echo 0 >$d/memory_backed
	[ -z "${3:-}" ] || echo "$3" >$d/hw_queue_depth
	echo "$2" >$d/size
	echo 1 >$d/power
	[ -b /dev/$1 ] || fail "no /dev/$1"
}

# A backing device that takes 5 ms per request (null_blk in timer mode, as a disk
# or a network volume) makes the loop device wait for it, not for CPU: at depth
# 32 its remapped reads are submitted from ->queue_rq while the worker has
# nothing queued, instead of waking the worker for each (before this rule only
# a lone request was: 1 of 512 here). Not while another task is runnable on the
# submitter's CPU (see the next test): 512 of 512 on the test kernel, 350 of 512
# on the debug kernel, where softirqs and kworkers keep the CPUs busier.
test_a_slow_backing_is_remapped_at_depth_without_handoff() {
	[ -r $STATS ] || skip "no per-device counters in $LOOP_IMPL"
	[ -d $NULLB_CFG ] || skip "no null_blk configfs"
	local N R
	slow_nullb rlnbslow 64
	deep_share "$(losetup -f --show --direct-io=on /dev/rlnbslow)" 2
	nullb_rm rlnbslow
	[ $((N * 4)) -ge $R ] || fail "$N of $R reads at depth 32 on a 5 ms backing device remapped without a hand-off (less than a quarter)"
}

# With many busy devices on a slow backing device (here four per CPU and four
# more, at depth 32 each) the CPUs are what the devices wait for: a submitter
# finds another task runnable on its CPU, the slow-backing rule is off and the
# workers take the requests, in batches (session 23, 2 vCPUs, 5 ms null_blk:
# remapping in every submitter was 0.81x loop.ko at 64 busy devices, the workers
# 1.04x). All devices read at once, for a fixed time, so they are busy together
# from start to end.
test_many_busy_devices_on_a_slow_backing_keep_the_worker() {
	[ -r $STATS ] || skip "no per-device counters in $LOOP_IMPL"
	[ -d $NULLB_CFG ] || skip "no null_blk configfs"
	local n=$(($(nproc) * 4 + 4)) i dev devs=() args=() N=0 R=0 i0=0 r0=0
	slow_nullb rlnbmany $((n * 4 + 4)) 4096
	for i in $(seq 0 $((n - 1))); do
		dev=$(losetup -f --show --direct-io=on -o $((i * 4))M --sizelimit 4M /dev/rlnbmany) ||
			fail "losetup of device $i of $n failed"
		devs+=("$dev")
		args+=(--name="${dev#/dev/}" --filename="$dev")
		# One device busy alone: rust_loop measures the backing device (5 ms).
		deep_reads "$dev" 1
		i0=$((i0 + $(inline_of "$dev"))) r0=$((r0 + $(requests_of "$dev")))
	done
	fio --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=32 --size=4m \
		--runtime=3 --time_based --norandommap --randrepeat=0 --output=/dev/null "${args[@]}" ||
		fail "fio on $n devices at once failed"
	for dev in "${devs[@]}"; do
		N=$((N + $(inline_of "$dev"))) R=$((R + $(requests_of "$dev")))
		losetup -d "$dev"
	done
	N=$((N - i0)) R=$((R - r0))
	nullb_rm rlnbmany
	echo "# $N of $R reads at depth 32 on $n busy devices ($(nproc) CPUs) remapped in ->queue_rq"
	[ $R -ge $((n * 16)) ] || fail "only $R reads on $n devices in 3 s"
	[ $((N * 2)) -le $R ] || fail "$N of $R reads on $n busy devices remapped in ->queue_rq (more than half)"
}

# On a fast backing device the submitter at depth 32 is bound by CPU: the worker
# keeps remapping on a second CPU (the same mix as for file backing, see
# data_path.sh test_a_deep_submitter_keeps_the_worker), and the slow-backing
# rule above must not turn it into remapping one after another in ->queue_rq.
# The rule's bound is absolute (1 ms), so the memory-backed null_blk is "fast" only
# where one of its reads alone takes a small part of that (under a tenth; 15 us
# on the test kernel under TCG): on a debug kernel (KASAN, lockdep) under TCG a
# read alone takes about 190 us, at depth 32 CPU contention makes even the
# quickest take more than 1 ms, and the test has nothing to show there.
test_a_fast_backing_at_depth_keeps_the_worker() {
	[ -r $STATS ] || skip "no per-device counters in $LOOP_IMPL"
	local N R us
	nullb_make rlnbfast 4096 1024 0 0
	# fio's terse format, field 16: the mean completion latency of reads, in us.
	us=$(fio --name=alone --filename=/dev/rlnbfast --rw=randread --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=1 --io_size=1m --norandommap --randrepeat=0 \
		--output-format=terse --terse-version=3 | cut -d';' -f16)
	us=${us%.*}
	echo "# a 4 KiB read alone on the memory-backed null_blk: ${us} us"
	if [ "${us:-0}" -ge 100 ]; then
		nullb_rm rlnbfast
		skip "a 4 KiB read alone on the memory-backed null_blk takes ${us} us here: not a fast device for a 1 ms bound"
	fi
	deep_share "$(losetup -f --show --direct-io=on /dev/rlnbfast)" 16
	nullb_rm rlnbfast
	[ $((N * 2)) -le $R ] || fail "$N of $R reads at depth 32 on a memory-backed null_blk remapped in ->queue_rq (more than half)"
}

test_unaligned_offset_falls_back_to_file_path() {
	local dev
	nullb_make rlnb6 4096 1024 0 0
	dev=$(losetup -f --show -o 512 --sizelimit $((8 << 20)) /dev/rlnb6)
	pattern "$dev" 0 65536 3
	sync
	blockdev --flushbufs "$dev"
	assert_eq "data at backing+512" "$(rangesum "$dev" 0 65536)" "$(filesum /dev/rlnb6 512 65536)"
	losetup -d "$dev"
	nullb_rm rlnb6
}

test_injected_backing_failures_are_eio_then_detach_cleanly() {
	local F=/sys/kernel/debug/fail_make_request dev rc=0
	[ -d $F ] || skip "no fail_make_request"
	nullb_make rlnb7 512 1024 0 0
	dev=$(losetup -f --show --direct-io=on /dev/rlnb7)
	dd if=/dev/urandom of="$dev" bs=64k count=4 oflag=direct status=none
	echo 100 >$F/probability
	echo -1 >$F/times
	echo 0 >$F/verbose
	echo 1 >/sys/block/rlnb7/make-it-fail
	dd if="$dev" of=/dev/null bs=64k count=4 iflag=direct status=none 2>/dev/null && rc=1
	dd if=/dev/zero of="$dev" bs=64k count=4 oflag=direct status=none 2>/dev/null && rc=2
	echo 0 >/sys/block/rlnb7/make-it-fail
	echo 0 >$F/probability
	[ $rc = 0 ] || fail "I/O succeeded while every backing bio failed (case $rc)"
	dd if="$dev" of=/dev/null bs=64k count=4 iflag=direct status=none || fail "I/O still failing after injection stopped"
	losetup -d "$dev"
	[ ! -e /sys/block/${dev#/dev/}/loop/backing_file ] || fail "did not detach"
	nullb_rm rlnb7
}

ktap_main block_backing
