#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# util-linux losetup and mount -o loop against the loaded loop driver: the
# behaviour users see. Runs against rust_loop.ko and, as the reference, loop.ko.
. /tests/lib/ktap.sh

test_find_show_attaches_first_free_device() {
	local img dev
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show "$img")
	[[ $dev =~ ^/dev/loop[0-9]+$ ]] || fail "losetup -f --show printed '$dev'"
	assert_eq backing_file "$img" "$(sysblk "$dev" loop/backing_file)"
	assert_eq size_in_sectors 16384 "$(sysblk "$dev" size)"
	losetup -d "$dev"
	[ ! -e "/sys/block/${dev#/dev/}/loop/backing_file" ] || fail "loop/ still present after detach"
	assert_eq "size after detach" 0 "$(sysblk "$dev" size)"
}

test_offset_maps_device_start_into_the_file() {
	local img dev
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show -o 1048576 "$img")
	assert_eq offset 1048576 "$(sysblk "$dev" loop/offset)"
	assert_eq size_bytes $((7 * 1048576)) "$(blockdev --getsize64 "$dev")"
	pattern "$dev" 4096 65536 7
	sync
	blockdev --flushbufs "$dev"
	assert_eq "data at file offset 1M+4K" "$(filesum "$dev" 4096 65536)" "$(filesum "$img" $((1048576 + 4096)) 65536)"
}

test_file_data_visible_through_device() {
	local img dev
	img=$(mkimg a.img 4M)
	pattern "$img" 131072 262144 11
	dev=$(losetup -f --show "$img")
	assert_eq "same bytes" "$(filesum "$img" 131072 262144)" "$(filesum "$dev" 131072 262144)"
}

test_sizelimit_caps_device_size() {
	local img dev
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show --sizelimit 1048576 "$img")
	assert_eq size_bytes 1048576 "$(blockdev --getsize64 "$dev")"
	assert_eq sizelimit 1048576 "$(sysblk "$dev" loop/sizelimit)"
}

test_read_only_device_refuses_writes() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show -r "$img")
	assert_eq ro 1 "$(sysblk "$dev" ro)"
	if dd if=/dev/zero of="$dev" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
		fail "write to a read-only loop device succeeded"
	fi
	losetup -l -n -O RO "$dev" | grep -q 1 || fail "losetup -l RO column"
}

test_partscan_creates_partition_nodes() {
	local img dev
	img=$(mkimg p.img 16M)
	printf 'label: dos\n,4M,L\n,,L\n' | sfdisk -q "$img" >/dev/null
	dev=$(losetup -f --show -P "$img")
	assert_eq partscan 1 "$(sysblk "$dev" loop/partscan)"
	[ -b "${dev}p1" ] && [ -b "${dev}p2" ] || fail "no ${dev}p1/p2: $(ls /dev/loop*)"
	assert_eq p1_size 8192 "$(cat /sys/block/${dev#/dev/}/${dev#/dev/}p1/size)"
	losetup -d "$dev"
	[ ! -e "${dev}p1" ] || fail "partition node left after detach"
}

test_no_partitions_without_partscan() {
	local img dev
	img=$(mkimg p.img 16M)
	printf 'label: dos\n,4M,L\n,,L\n' | sfdisk -q "$img" >/dev/null
	dev=$(losetup -f --show "$img")
	assert_eq partscan 0 "$(sysblk "$dev" loop/partscan)"
	[ ! -e "${dev}p1" ] || fail "partitions scanned without -P"
}

test_block_size_4096() {
	local img dev
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show -b 4096 "$img")
	assert_eq logical_block_size 4096 "$(sysblk "$dev" queue/logical_block_size)"
	assert_eq LOG-SEC 4096 "$(losetup -l -n -O LOG-SEC "$dev" | tr -d ' ')"
}

test_direct_io_on_ext4_backing() {
	mountpoint -q $SCRATCH || skip "no scratch ext4"
	local img dev
	img=$SCRATCH/dio.img
	rm -f "$img"
	truncate -s 16M "$img"
	dev=$(losetup -f --show --direct-io=on "$img")
	assert_eq dio 1 "$(sysblk "$dev" loop/dio)"
	pattern "$dev" 0 1048576 3
	sync
	assert_eq "data through dio" "$(filesum "$dev" 0 1048576)" "$(filesum "$img" 0 1048576)"
	losetup --direct-io=off "$dev"
	assert_eq "dio off" 0 "$(sysblk "$dev" loop/dio)"
	losetup -d "$dev"
	rm -f "$img"
}

test_capacity_follows_grown_file() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show "$img")
	truncate -s 12M "$img"
	assert_eq "before -c" $((4 << 20)) "$(blockdev --getsize64 "$dev")"
	losetup -c "$dev"
	assert_eq "after -c" $((12 << 20)) "$(blockdev --getsize64 "$dev")"
}

test_detach_all() {
	local img d1 d2
	img=$(mkimg a.img 4M)
	d1=$(losetup -f --show "$img")
	d2=$(losetup -f --show "$img")
	losetup -D
	[ ! -e /sys/block/${d1#/dev/}/loop/backing_file ] && [ ! -e /sys/block/${d2#/dev/}/loop/backing_file ] ||
		fail "devices still bound after -D"
}

test_list_and_json_show_configuration() {
	local img dev out
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show -o 512 --sizelimit 4096000 "$img")
	out=$(losetup -l -n -O NAME,OFFSET,SIZELIMIT,AUTOCLEAR,RO,BACK-FILE,DIO "$dev")
	echo "$out" | grep -qE "^$dev +512 +4096000 +0 +0 $img +0\$" || fail "losetup -l: '$out'"
	out=$(losetup --json -l "$dev")
	echo "$out" | grep -q "\"back-file\": *\"$img\"" || fail "json: $out"
	echo "$out" | grep -q "\"offset\": *512" || fail "json offset: $out"
}

test_find_by_backing_file() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show "$img")
	losetup -j "$img" | grep -q "^$dev: " || fail "losetup -j: $(losetup -j "$img")"
}

test_mount_o_loop_ext4_and_autoclear_on_umount() {
	local img dev
	img=$(mkimg fs.img 32M)
	mkfs.ext4 -q -F "$img"
	mkdir -p /mnt/rl1
	mount -o loop "$img" /mnt/rl1
	echo hello >/mnt/rl1/file
	dev=$(losetup -j "$img" | cut -d: -f1)
	[ -n "$dev" ] || fail "no loop device for the mount"
	assert_eq autoclear 1 "$(sysblk "$dev" loop/autoclear)"
	umount /mnt/rl1
	[ ! -e /sys/block/${dev#/dev/}/loop/backing_file ] || fail "still bound after umount"
	mount -o loop,ro "$img" /mnt/rl1
	assert_eq content hello "$(cat /mnt/rl1/file)"
	umount /mnt/rl1
	e2fsck -fn "$img" >/dev/null || fail "fsck of the image"
}

test_lazy_detach_while_open() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show "$img")
	"$LOOPCTL" hold "$dev" 2 &
	sleep 0.5
	losetup -d "$dev"
	assert_eq "still bound, autoclear" 1 "$(sysblk "$dev" loop/autoclear)"
	wait
	sleep 0.2
	[ ! -e /sys/block/${dev#/dev/}/loop/backing_file ] || fail "not detached at last close"
}

test_discard_punches_hole_in_backing_file() {
	local img dev before after
	img=$(mkimg a.img 8M)
	dev=$(losetup -f --show "$img")
	dd if=/dev/urandom of="$dev" bs=1M count=8 status=none
	sync
	before=$(stat -c %b "$img")
	blkdiscard "$dev"
	sync
	after=$(stat -c %b "$img")
	[ "$after" -lt "$before" ] || fail "allocated blocks $before -> $after"
}

test_write_zeroes_reads_back_zero() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show "$img")
	dd if=/dev/urandom of="$dev" bs=1M count=4 status=none
	sync
	blkdiscard -z -o 1048576 -l 1048576 "$dev"
	assert_eq "zeroed range" "$(head -c 1048576 /dev/zero | sha256sum | cut -c1-16)" "$(filesum "$img" 1048576 1048576)"
}

test_fsync_through_device() {
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show "$img")
	dd if=/dev/urandom of="$dev" bs=64k count=4 conv=fsync status=none || fail "fsync failed"
}

test_module_reference_held_while_bound() {
	local img dev m=$LOOP_IMPL
	img=$(mkimg a.img 4M)
	assert_eq "refcnt unbound" 0 "$(cat /sys/module/$m/refcnt)"
	dev=$(losetup -f --show "$img")
	assert_eq "refcnt bound" 1 "$(cat /sys/module/$m/refcnt)"
	losetup -d "$dev"
	assert_eq "refcnt after detach" 0 "$(cat /sys/module/$m/refcnt)"
}

test_read_only_flag_cleared_by_detach() {
	loop_ko_bug "loop.ko keeps ro=1 after detaching a read-only device (loop-abi.md 20.4)"
	local img dev
	img=$(mkimg a.img 4M)
	dev=$(losetup -f --show -r "$img")
	listen "$WORK/ev"
	losetup -d "$dev"
	heard
	assert_eq "ro after detach" 0 "$(sysblk "$dev" ro)"
	# Said with the change uevent that clearing the flag sends (set_disk_ro), one.
	assert_eq "DISK_RO=0 uevents at detach" 1 "$(grep -c "^change@/devices/virtual/block/${dev#/dev/} .*DISK_RO=0" "$WORK/ev" || true)"
}

test_concurrent_attach_detach() {
	local i img pids=()
	for i in 1 2 3 4 5 6; do
		img=$(mkimg c$i.img 2M)
		(for r in 1 2 3 4 5; do
			d=$(losetup -f --show "$img" 2>&1) || { echo "worker $i round $r: losetup -f: $d"; exit 1; }
			dd if=/dev/zero of="$d" bs=4k count=16 status=none 2>&1 || { echo "worker $i round $r: dd $d"; exit 1; }
			losetup -d "$d" 2>&1 || { echo "worker $i round $r: losetup -d $d"; exit 1; }
		done) >"$WORK/w$i.log" 2>&1 &
		pids+=($!)
	done
	local rc=0 p
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || fail "a worker failed: $(cat "$WORK"/w*.log)"
	[ -z "$(losetup -n -l)" ] || fail "left bound: $(losetup -l)"
}

test_write_to_full_backing_filesystem_loses_nothing_acknowledged() {
	loop_ko_bug "loop.ko completes short writes as success: data loss (loop-abi.md 20.2)"
	local dev n
	mkdir -p /mnt/rlsmall
	mount -t tmpfs -o size=1m tmpfs /mnt/rlsmall
	truncate -s 4M /mnt/rlsmall/img
	head -c 2097152 /dev/urandom >"$WORK/src"
	dev=$(losetup -f --show /mnt/rlsmall/img)
	# 48 KiB requests do not line up with the filesystem's end: one straddles it.
	dd if="$WORK/src" of="$dev" bs=48k oflag=direct 2>"$WORK/dd.err" && fail "no error writing 2 MiB to 1 MiB"
	n=$(sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' "$WORK/dd.err")
	[ -n "$n" ] && [ "$n" -gt 0 ] || fail "dd: $(cat "$WORK/dd.err")"
	# Everything dd was told was written must be in the file.
	assert_eq "first $n x 48 KiB" "$(head -c $((n * 49152)) "$WORK/src" | sha256sum)" \
		"$(head -c $((n * 49152)) /mnt/rlsmall/img | sha256sum)"
	losetup -d "$dev"
	umount /mnt/rlsmall
}

test_block_device_backing_round_trip() {
	[ -b /dev/vda ] || skip "no virtio disk"
	local dev dio
	for dio in off on; do
		dev=$(losetup -f --show -o 1048576 --sizelimit 8388608 --direct-io=$dio /dev/vda)
		assert_eq "size ($dio)" 8388608 "$(blockdev --getsize64 "$dev")"
		pattern "$dev" 65536 262144 $RANDOM
		sync
		blockdev --flushbufs "$dev"
		assert_eq "dio=$dio: device data at vda+1M" "$(rangesum "$dev" 65536 262144)" "$(rangesum /dev/vda $((1048576 + 65536)) 262144)"
		pattern /dev/vda $((1048576 + 524288)) 131072 $RANDOM
		sync
		blockdev --flushbufs "$dev"
		assert_eq "dio=$dio: vda data through device" "$(rangesum /dev/vda $((1048576 + 524288)) 131072)" "$(rangesum "$dev" 524288 131072)"
		losetup -d "$dev"
	done
}

ktap_main losetup
