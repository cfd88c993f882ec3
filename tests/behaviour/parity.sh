#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What a user or a tool sees beside the errno: uevents and their count, partitions,
# queue attributes, accounting, kernel log lines, module parameters (loop.ko 7.3 as
# the reference; issue 12).
. /tests/lib/ktap.sh

# count FILE REGEX: how many uevent lines match.
count() { grep -cE "$2" "$1" || true; }
# events DEV ACTION FILE: uevents of the whole disk DEV with ACTION.
disk_events() { count "$3" "^$2@/devices/virtual/block/${1#/dev/} "; }

# expect_uevents DEV CHANGES RESIZES LOOPCTL-ARGS...: the ioctl succeeds and sends
# exactly CHANGES change uevents for the disk DEV, RESIZES of them with RESIZE=1.
expect_uevents() {
	local d=$1 changes=$2 resizes=$3
	shift 3
	listen "$WORK/ev"
	expect_ok "$@"
	heard
	assert_eq "$*: change events" "$changes" "$(disk_events "$d" change "$WORK/ev")"
	assert_eq "$*: RESIZE" "$resizes" "$(count "$WORK/ev" "RESIZE=1")"
}

# A dos label with two partitions (1 MiB at 1 MiB, 1 MiB at 3 MiB) on an 8 MiB image.
two_part_img() {
	local img
	img=$(mkimg "$1" 8M)
	printf 'label: dos\n2048,2048,83\n6144,2048,83\n' | sfdisk -q "$img" >/dev/null
	echo "$img"
}

test_blkpg_partitions_are_removed_at_detach_with_their_uevents() {
	local img img2 d n
	img=$(two_part_img p.img)
	d=$(losetup -f --show "$img")
	n=${d#/dev/}
	[ ! -e "/sys/block/$n/${n}p1" ] || fail "partitions scanned without partscan"
	partx -a "$d"
	[ -e "/sys/block/$n/${n}p1" ] && [ -e "/sys/block/$n/${n}p2" ] || fail "partx -a added nothing"
	listen "$WORK/ev"
	losetup -d "$d"
	heard
	[ ! -e "/sys/block/$n/${n}p1" ] || fail "${n}p1 survived the detach"
	[ ! -e "/sys/block/$n/${n}p2" ] || fail "${n}p2 survived the detach"
	assert_eq "remove events of p1" 1 "$(count "$WORK/ev" "^remove@/devices/virtual/block/$n/${n}p1 ")"
	assert_eq "remove events of p2" 1 "$(count "$WORK/ev" "^remove@/devices/virtual/block/$n/${n}p2 ")"
	assert_eq "change events of $n" 2 "$(disk_events "$d" change "$WORK/ev")"
	# The next binding sees no stale partition, and partx works on it.
	img2=$(mkimg q.img 8M)
	printf 'label: dos\n4096,1024,83\n' | sfdisk -q "$img2" >/dev/null
	losetup "$d" "$img2"
	[ ! -e "/sys/block/$n/${n}p1" ] || fail "stale ${n}p1 on the next binding"
	partx -a "$d" || fail "partx -a after re-attach failed"
	assert_eq "p1 start" 4096 "$(cat "/sys/block/$n/${n}p1/start")"
	assert_eq "p1 size" 1024 "$(cat "/sys/block/$n/${n}p1/size")"
}

test_set_status64_size_changes_send_one_change_uevent_each() {
	local img d
	img=$(mkimg a.img 4M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$img"
	# A real change between non-zero sizes: RESIZE=1.
	expect_uevents "$d" 1 1 set-status64 "$d" 0 1048576 0
	assert_eq size 6144 "$(sysblk "$d" size)"
	# Offset and sizelimit change, the size does not: a plain change event.
	expect_uevents "$d" 1 0 set-status64 "$d" 0 0 3145728
	assert_eq size 6144 "$(sysblk "$d" size)"
	# The same offset and sizelimit again: nothing to tell.
	expect_uevents "$d" 0 0 set-status64 "$d" 0 0 3145728
	# An offset past the end: size 0, a plain change event.
	expect_uevents "$d" 1 0 set-status64 "$d" 0 8388608 0
	assert_eq size 0 "$(sysblk "$d" size)"
	# The legacy call too (offset 0, no sizelimit: back from zero, a plain event).
	expect_uevents "$d" 1 0 set-status "$d" 0 0
	assert_eq size 8192 "$(sysblk "$d" size)"
}

test_set_capacity_sends_a_change_uevent_also_when_nothing_changed() {
	local img d
	img=$(mkimg a.img 2M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$img"
	expect_uevents "$d" 1 0 set-capacity "$d"
	truncate -s 0 "$img"
	expect_uevents "$d" 1 0 set-capacity "$d"
	assert_eq "size at zero" 0 "$(sysblk "$d" size)"
	truncate -s 3M "$img"
	expect_uevents "$d" 1 0 set-capacity "$d"
	assert_eq "size from zero" 6144 "$(sysblk "$d" size)"
	truncate -s 4M "$img"
	expect_uevents "$d" 1 1 set-capacity "$d"
}

# ext4 (4 KiB blocks) on a null_blk with 4 KiB logical blocks and a DMA alignment
# below 512 bytes, mounted at /mnt/rl4k: direct I/O there needs 4 KiB offsets
# but only the device's memory alignment.
ext4_4k_up() {
	nullb_make rl4k 4096 1024 0 0 128
	[ "$(cat /sys/block/rl4k/queue/dma_alignment)" -le 511 ] ||
		skip "null_blk DMA alignment $(cat /sys/block/rl4k/queue/dma_alignment)"
	mkfs.ext4 -q -F -b 4096 /dev/rl4k
	mkdir -p /mnt/rl4k
	mount /dev/rl4k /mnt/rl4k
}
ext4_4k_down() {
	umount /mnt/rl4k
	nullb_rm rl4k
}

test_direct_io_dma_alignment_is_the_files_memory_alignment() {
	local img d
	ext4_4k_up
	img=/mnt/rl4k/dma.img
	truncate -s 4M "$img"
	d=$(losetup -f --show --direct-io=on "$img")
	assert_eq dio 1 "$(sysblk "$d" loop/dio)"
	assert_eq lbs 4096 "$(sysblk "$d" queue/logical_block_size)"
	assert_eq dma_alignment 511 "$(sysblk "$d" queue/dma_alignment)"
	assert_eq "512-aligned O_DIRECT read" "OK 0" "$("$LOOPCTL" dio-read-512 "$d")"
	losetup -d "$d"
	# LOOP_CONFIGURE with block size 0 and DIRECT_IO.
	d=$(free_dev)
	expect_ok configure "$d" "$img" 16 0 0 0
	assert_eq dio 1 "$(sysblk "$d" loop/dio)"
	assert_eq lbs 4096 "$(sysblk "$d" queue/logical_block_size)"
	assert_eq dma_alignment 511 "$(sysblk "$d" queue/dma_alignment)"
	assert_eq "512-aligned O_DIRECT read" "OK 0" "$("$LOOPCTL" dio-read-512 "$d")"
	# Without direct I/O: a sector's alignment.
	expect_ok set-dio "$d" 0
	assert_eq "dma_alignment without dio" 511 "$(sysblk "$d" queue/dma_alignment)"
	expect_ok clr-fd "$d"
	ext4_4k_down
}

lo_flags() { "$LOOPCTL" get-status64 "$1" | sed -n 's/.* flags=\([0-9]*\) .*/\1/p'; }

test_change_fd_to_o_direct_file_turns_direct_io_on_and_it_stays() {
	local a b c d
	mountpoint -q $SCRATCH || skip "no scratch filesystem"
	a=$SCRATCH/a.img b=$SCRATCH/b.img c=$SCRATCH/c.img
	rm -f "$a" "$b" "$c"
	truncate -s 1M "$a" "$b" "$c"
	d=$(free_dev)
	expect_ok set-fd "$d" "$a" ro
	assert_eq "flags before" 1 "$(lo_flags "$d")"
	assert_eq "dio before" 0 "$(sysblk "$d" loop/dio)"
	expect_ok change-fd "$d" "$b" ro-direct
	assert_eq "flags after an O_DIRECT file" 17 "$(lo_flags "$d")"
	assert_eq "dio after an O_DIRECT file" 1 "$(sysblk "$d" loop/dio)"
	expect_ok change-fd "$d" "$c" ro
	assert_eq "flags after a plain file" 17 "$(lo_flags "$d")"
	assert_eq "dio after a plain file" 1 "$(sysblk "$d" loop/dio)"
	assert_eq "512-aligned O_DIRECT read" "OK 0" "$("$LOOPCTL" dio-read-512 "$d")"
	expect_ok clr-fd "$d"
	rm -f "$a" "$b" "$c"
}

test_change_fd_compares_device_sizes_with_sizelimit_applied() {
	local a b d
	a=$(mkimg a.img 2M)
	b=$(mkimg b.img 1M)
	pattern "$b" 0 65536 7
	d=$(free_dev)
	expect_ok configure "$d" "$a" 1 0 0 65536 ro
	assert_eq size 128 "$(sysblk "$d" size)"
	expect_ok change-fd "$d" "$b" ro
	assert_eq "size after" 128 "$(sysblk "$d" size)"
	assert_eq backing "$b" "$(sysblk "$d" loop/backing_file)"
	assert_eq data "$(filesum "$b" 0 65536)" "$(rangesum "$d" 0 65536)"
}

# /sys/block/loopN/stat: the read and written sector counts (fields 3 and 7).
sectors_read() { awk '{print $3}' "/sys/block/${1#/dev/}/stat"; }
sectors_written() { awk '{print $7}' "/sys/block/${1#/dev/}/stat"; }

test_io_is_accounted_in_diskstats() {
	local img d n r0 w0
	img=$(mkimg a.img 4M)
	d=$(free_dev)
	n=${d#/dev/}
	assert_eq "iostats unbound" 1 "$(sysblk "$d" queue/iostats)"
	expect_ok set-fd "$d" "$img"
	assert_eq "iostats bound" 1 "$(sysblk "$d" queue/iostats)"
	r0=$(sectors_read "$d") w0=$(sectors_written "$d")
	dd if="$d" of=/dev/null bs=1M count=1 iflag=direct status=none
	dd if=/dev/zero of="$d" bs=1M count=1 oflag=direct status=none
	[ $(($(sectors_read "$d") - r0)) -ge 2048 ] || fail "read sectors: $r0 -> $(sectors_read "$d")"
	[ $(($(sectors_written "$d") - w0)) -ge 2048 ] || fail "written sectors: $w0 -> $(sectors_written "$d")"
	grep -qE "^ *7 +[0-9]+ $n " /proc/diskstats || fail "no $n in /proc/diskstats"
	[ "$(awk -v n="$n" '$3 == n {print $6}' /proc/diskstats)" -ge 2048 ] || fail "diskstats: $(grep " $n " /proc/diskstats)"
	expect_ok clr-fd "$d"
	# The user's choice (sysfs) survives the next attach.
	echo 0 >"/sys/block/$n/queue/iostats"
	expect_ok set-fd "$d" "$img"
	local kept
	kept=$(sysblk "$d" queue/iostats)
	echo 1 >"/sys/block/$n/queue/iostats"
	assert_eq "iostats off by the user, after attach" 0 "$kept"
}

test_io_is_accounted_on_block_device_backing() {
	local d
	nullb_make rlstat 512 1024 1 0
	d=$(losetup -f --show --direct-io=on /dev/rlstat)
	assert_eq iostats 1 "$(sysblk "$d" queue/iostats)"
	dd if="$d" of=/dev/null bs=1M count=1 iflag=direct status=none
	[ "$(sectors_read "$d")" -ge 2048 ] || fail "read sectors: $(sectors_read "$d")"
	losetup -d "$d"
	nullb_rm rlstat
}

test_sole_opener_io_after_clr_fd_is_served_until_last_close() {
	local img d r
	loop_ko_bug "LOOP_CLR_FD by the sole opener puts loop.ko in rundown at once: reads fail with EIO and buffered writes flushed at the last close are lost (lost async page write)"
	img=$(mkimg a.img 2M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$img"
	r=$("$LOOPCTL" clr-then-io "$d")
	assert_eq "clr and read" "OK clr=OK read=OK" "$r"
	# The buffered 8 KiB written before LOOP_CLR_FD reached the file at the last close.
	assert_eq "written before detach" "$(head -c 8192 /dev/zero | tr '\0' 'Z' | sha256sum | cut -c1-16)" "$(filesum "$img" 0 8192)"
	# And the device is detached.
	expect_errno ENXIO get-status64 "$d"
}

# dmesg_count TEXT: lines of the kernel log that hold TEXT.
dmesg_count() { dmesg | grep -cF "$1" || true; }

# A block size the block layer refuses is refused with the line its limits
# validation prints (loop.ko hands every size to the queue limits), by
# LOOP_SET_BLOCK_SIZE and LOOP_CONFIGURE alike (found by differential.sh).
test_refused_block_sizes_are_logged_as_the_block_layer_does() {
	local img d line n0
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$img"
	line="Invalid logical block size (1000)"
	n0=$(dmesg_count "$line")
	expect_errno EINVAL set-bs "$d" 1000
	assert_eq "lines after LOOP_SET_BLOCK_SIZE 1000" $((n0 + 1)) "$(dmesg_count "$line")"
	dmesg | sed 's/^\[[ 0-9.]*\] //' | grep -qxF "$line" || fail "the line is prefixed: $(dmesg | grep -F "$line" | tail -1)"
	assert_eq "block size kept" 512 "$(sysblk "$d" queue/logical_block_size)"
	# A device of its own: loop.ko leaves a device that failed LOOP_CONFIGURE on
	# the block size with its uevents suppressed (README, deliberate differences).
	"$LOOPCTL" ctl-remove 71 >/dev/null 2>&1 || true
	expect_ok ctl-add 71
	line="Invalid logical block size (3000)"
	n0=$(dmesg_count "$line")
	expect_errno EINVAL configure /dev/loop71 "$img" 0 3000 0 0
	assert_eq "lines after LOOP_CONFIGURE with 3000" $((n0 + 1)) "$(dmesg_count "$line")"
	expect_ok ctl-remove 71
}

test_removed_transfers_and_unspecified_remove_are_logged() {
	local img d xor crypto any
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$img"
	xor="support for the xor transformation has been removed."
	crypto="support for cryptoloop has been removed.  Use dm-crypt instead."
	any="deleting an unspecified loop device is not supported."
	local x0 c0
	x0=$(dmesg_count "$xor") c0=$(dmesg_count "$crypto")
	expect_errno EINVAL set-status64 "$d" 0 0 0 name 1
	assert_eq "xor lines" $((x0 + 1)) "$(dmesg_count "$xor")"
	expect_errno EINVAL set-status64 "$d" 0 0 0 name 18
	assert_eq "cryptoloop lines" $((c0 + 1)) "$(dmesg_count "$crypto")"
	# Other types are EINVAL without a line.
	expect_errno EINVAL set-status64 "$d" 0 0 0 name 2
	assert_eq "xor lines after type 2" $((x0 + 1)) "$(dmesg_count "$xor")"
	# Unprefixed, as loop.ko prints them (loop.c has no pr_fmt).
	dmesg | grep -qE "^\[ *[0-9.]+\] $xor" || fail "xor line is prefixed: $(dmesg | grep -F "$xor" | tail -1)"
	# LOOP_CTL_REMOVE of -1: one line per module load (pr_warn_once).
	expect_errno EINVAL ctl-remove -1
	assert_eq "unspecified remove lines" 1 "$(dmesg_count "$any")"
	expect_errno EINVAL ctl-remove -1
	assert_eq "unspecified remove lines, again" 1 "$(dmesg_count "$any")"
}

test_module_parameters_are_visible_read_only() {
	local m=/sys/module/$LOOP_IMPL/parameters p
	for p in max_loop max_part hw_queue_depth; do
		[ -f "$m/$p" ] || fail "no $m/$p"
		assert_eq "mode of $p" 444 "$(stat -c %a "$m/$p")"
	done
	assert_eq max_loop 8 "$(cat $m/max_loop)"
	assert_eq max_part 0 "$(cat $m/max_part)"
	assert_eq hw_queue_depth 128 "$(cat $m/hw_queue_depth)"
}

# Reloads the driver under test with PARAMS, runs CHECK, and reloads it as it was.
with_params() { # PARAMS CHECK
	local ko=/tests/ko/$LOOP_IMPL.ko rc=0
	losetup -D
	rmmod "$LOOP_IMPL" || fail "rmmod $LOOP_IMPL"
	# shellcheck disable=SC2086
	if insmod "$ko" $1; then
		(eval "$2") || rc=$?
		rmmod "$LOOP_IMPL" || rc=1
	else
		rc=$?
		echo "insmod $ko $1 failed" >&2
	fi
	insmod "$ko" || fail "could not reload $LOOP_IMPL"
	return $rc
}

test_module_parameters_take_loop_kos_values_and_checks() {
	local m=/sys/module/$LOOP_IMPL/parameters ko=/tests/ko/$LOOP_IMPL.ko
	# max_part is rewritten to the minors per device less one; hw_queue_depth as given.
	with_params "max_part=4 max_loop=2 hw_queue_depth=16" '
		assert_eq max_part 7 "$(cat $m/max_part)" &&
		assert_eq max_loop 2 "$(cat $m/max_loop)" &&
		assert_eq hw_queue_depth 16 "$(cat $m/hw_queue_depth)" &&
		assert_eq "loop1 minor" "7:8" "$(cat /sys/block/loop1/dev)"'
	# hw_queue_depth below 1 refuses the load.
	rmmod "$LOOP_IMPL"
	if insmod "$ko" hw_queue_depth=0 2>/dev/null; then
		rmmod "$LOOP_IMPL"
		insmod "$ko"
		fail "hw_queue_depth=0 was accepted"
	fi
	insmod "$ko" || fail "could not reload $LOOP_IMPL"
}

# --- Deliberate differences (README table): rust_loop's behaviour, XFAIL on loop.ko.

test_change_fd_sizes_must_match_to_the_byte() {
	local a b d
	loop_ko_bug "loop.ko compares 512-byte sectors: a file 100 bytes longer passes"
	a=$(mkimg a.img 1M)
	b=$(mkimg b.img $((1048576 + 100)))
	d=$(free_dev)
	expect_ok set-fd "$d" "$a" ro
	expect_errno EINVAL change-fd "$d" "$b" ro
}

test_failed_change_fd_sends_no_uevent() {
	local a b d
	loop_ko_bug "loop.ko sends a change uevent also when LOOP_CHANGE_FD fails (loop-abi.md 16.2)"
	a=$(mkimg a.img 1M)
	b=$(mkimg b.img 2M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$a" ro
	listen "$WORK/ev"
	expect_errno EINVAL change-fd "$d" "$b" ro
	heard
	assert_eq "change events" 0 "$(disk_events "$d" change "$WORK/ev")"
}

test_max_loop_is_no_ceiling() {
	loop_ko_bug "with max_loop given, loop.ko creates no device beyond it on open (CONFIG_BLOCK_LEGACY_AUTOLOAD)"
	with_params "max_loop=2" '
		rm -f "$WORK/loop9"
		mknod "$WORK/loop9" b 7 9
		"$LOOPCTL" get-status64 "$WORK/loop9" >/dev/null
		rm -f "$WORK/loop9"
		[ -b /dev/loop9 ] || fail "opening 7:9 created no loop9"'
}

test_nr_requests_shows_the_shared_tag_set() {
	local d
	loop_ko_bug "loop.ko has a tag set per device: nr_requests and async_depth are hw_queue_depth (128)"
	d=$(free_dev)
	# 16 busy devices' worth of hw_queue_depth, shared (README, Design: queue depth).
	assert_eq nr_requests $((16 * 128)) "$(sysblk "$d" queue/nr_requests)"
	# blk-mq starts a queue's async_depth at its tag set's depth, as nr_requests
	# (found by differential.sh).
	assert_eq async_depth $((16 * 128)) "$(sysblk "$d" queue/async_depth)"
}

test_read_across_a_shrunk_unaligned_end_fails_with_eio() {
	local img d
	loop_ko_bug "loop.ko returns stale file bytes for the part past a shrunk, unaligned end (loop-abi.md 20.1)"
	img=$(mkimg a.img 4M)
	pattern "$img" 0 $((2 << 20)) 11
	d=$(losetup -f --show "$img")
	truncate -s $((1048576 + 1000)) "$img"
	if dd if="$d" of=/dev/null bs=4k count=1 skip=256 iflag=direct status=none 2>/dev/null; then
		fail "a read across the new end (1 MiB + 1000) succeeded"
	fi
}

test_failed_configure_leaves_uevents_on() {
	local img
	loop_ko_bug "a LOOP_CONFIGURE that fails on the block size leaves loop.ko's uevents suppressed: the device's removal sends no remove uevent (loop-abi.md 20.4)"
	img=$(mkimg a.img 1M)
	"$LOOPCTL" ctl-remove 70 >/dev/null 2>&1 || true
	expect_ok ctl-add 70
	expect_errno EINVAL configure /dev/loop70 "$img" 0 1000 0 0
	listen "$WORK/ev"
	expect_ok ctl-remove 70
	heard
	assert_eq "remove events of loop70" 1 "$(count "$WORK/ev" "^remove@/devices/virtual/block/loop70 ")"
}

ktap_main parity
