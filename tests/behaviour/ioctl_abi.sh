#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Raw ioctls with exact errnos (loop-abi.md sections 3-5), through loopctl.
. /tests/lib/ktap.sh

# bound_dev IMG: a free device bound read-write to IMG (LOOP_SET_FD must succeed).
bound_dev() {
	local d
	d=$(free_dev)
	expect_ok set-fd "$d" "$1" >&2
	echo "$d"
}

test_set_fd_bad_fd_is_ebadf() {
	local d
	d=$(free_dev)
	expect_errno EBADF raw "$d" 0x4C00 999
}

test_set_fd_on_bound_device_is_ebusy() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	expect_errno EBUSY set-fd "$d" "$img"
}

test_set_fd_directory_is_einval() {
	local d
	d=$(free_dev)
	expect_errno EINVAL set-fd "$d" /tmp ro
}

test_set_fd_self_is_ebadf() {
	local d
	d=$(free_dev)
	expect_errno EBADF set-fd "$d" "$d" ro
}

test_set_fd_on_unbound_loop_is_einval() {
	local a b
	a=$(free_dev)
	"$LOOPCTL" ctl-add 40 >/dev/null
	"$LOOPCTL" ctl-add 41 >/dev/null
	expect_errno EINVAL set-fd /dev/loop41 /dev/loop40 ro
	"$LOOPCTL" ctl-remove 40 >/dev/null
	"$LOOPCTL" ctl-remove 41 >/dev/null
}

test_loop_on_loop_cycle_is_ebadf() {
	local img
	img=$(mkimg a.img 1M)
	"$LOOPCTL" ctl-add 42 >/dev/null
	"$LOOPCTL" ctl-add 43 >/dev/null
	expect_ok set-fd /dev/loop42 "$img" ro
	expect_ok set-fd /dev/loop43 /dev/loop42 ro
	# 42 -> 43 -> 42: a cycle.
	expect_errno EBADF change-fd /dev/loop42 /dev/loop43 ro
	expect_ok clr-fd /dev/loop43
	expect_ok clr-fd /dev/loop42
}

test_configure_unknown_flag_is_einval() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_errno EINVAL configure "$d" "$img" 0x40 0 0 0
	expect_errno ENXIO get-status64 "$d"
}

test_configure_bad_block_size_leaves_device_unbound() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_errno EINVAL configure "$d" "$img" 0 1000 0 0
	expect_errno ENXIO get-status64 "$d"
	assert_eq size 0 "$(sysblk "$d" size)"
	[ ! -e /sys/block/${d#/dev/}/loop ] || fail "loop/ sysfs left behind"
	expect_ok configure "$d" "$img" 0 4096 0 0
	assert_eq lbs 4096 "$(sysblk "$d" queue/logical_block_size)"
}

test_configure_bad_block_size_leaves_no_read_only_flag() {
	loop_ko_bug "loop.ko sets ro before validating the block size (loop-abi.md 16.1, 20.4)"
	local img d
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_errno EINVAL configure "$d" "$img" 1 1000 0 0
	assert_eq ro 0 "$(sysblk "$d" ro)"
}

test_configure_offset_beyond_llong_max_is_eoverflow() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	expect_errno EOVERFLOW configure "$d" "$img" 0 0 0x8000000000000000 0
}

test_configure_sets_everything_at_once() {
	local img d out
	img=$(mkimg a.img 4M)
	d=$(free_dev)
	expect_ok configure "$d" "$img" 0x8 4096 8192 1048576
	out=$("$LOOPCTL" get-status64 "$d")
	echo "$out" | grep -q "offset=8192 sizelimit=1048576 flags=8 " || fail "$out"
	assert_eq size 2048 "$(sysblk "$d" size)"
	assert_eq lbs 4096 "$(sysblk "$d" queue/logical_block_size)"
}

test_unbound_device_ioctls_are_enxio() {
	local d
	d=$(free_dev)
	expect_errno ENXIO clr-fd "$d"
	expect_errno ENXIO get-status64 "$d"
	expect_errno ENXIO get-status "$d"
	expect_errno ENXIO set-status64 "$d" 0 0 0
	expect_errno ENXIO set-capacity "$d"
	expect_errno ENXIO set-dio "$d" 1
	expect_errno ENXIO set-bs "$d" 4096
	expect_errno ENXIO change-fd "$d" "$(mkimg a.img 1M)"
}

test_get_status64_null_is_einval() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	expect_errno EINVAL null "$d" 0x4C05
	expect_errno EINVAL null "$d" 0x4C03
}

test_get_status64_reports_file_identity() {
	local img d out
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	out=$("$LOOPCTL" get-status64 "$d")
	echo "$out" | grep -q " inode=$(stat -c %i "$img") " || fail "$out vs inode $(stat -c %i "$img")"
	echo "$out" | grep -q "number=${d#/dev/loop} " || fail "$out"
}

test_unknown_device_ioctl_is_einval() {
	local d
	d=$(free_dev)
	expect_errno EINVAL raw "$d" 0x4C7F 0
}

test_set_status64_rejects_encryption() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	expect_errno EINVAL set-status64 "$d" 0 0 0 name 1
	expect_errno EINVAL set-status64 "$d" 0 0 0 name 0 33
}

test_set_status64_flags_semantics() {
	local img d out
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	# Keep it open: with AUTOCLEAR set, the last close would detach it.
	"$LOOPCTL" hold "$d" 3 &
	sleep 0.3
	# READ_ONLY and DIRECT_IO are ignored, AUTOCLEAR and PARTSCAN settable.
	expect_ok set-status64 "$d" $((1 | 4 | 8 | 16)) 0 0
	out=$("$LOOPCTL" get-status64 "$d")
	echo "$out" | grep -q " flags=12 " || fail "$out"
	# PARTSCAN cannot be cleared, AUTOCLEAR can.
	expect_ok set-status64 "$d" 0 0 0
	"$LOOPCTL" get-status64 "$d" | grep -q " flags=8 " || fail "$("$LOOPCTL" get-status64 "$d")"
	wait
}

test_set_status64_offset_resizes() {
	local img d
	img=$(mkimg a.img 4M)
	d=$(bound_dev "$img")
	expect_ok set-status64 "$d" 0 1048576 0
	assert_eq size 6144 "$(sysblk "$d" size)"
}

test_legacy_set_and_get_status() {
	local img d out
	img=$(mkimg a.img 4M)
	d=$(bound_dev "$img")
	expect_ok set-status "$d" 8 512
	out=$("$LOOPCTL" get-status "$d")
	echo "$out" | grep -q "offset=512 flags=8 " || fail "$out"
}

# 32-bit callers: the compat entry. loopctl32 is loopctl built with -m32, so its
# struct loop_info is the 140-byte compat_loop_info.
LOOPCTL32=${LOOPCTL32:-/tests/bin/loopctl32}
need32() { "$LOOPCTL32" ctl-get-free >/dev/null 2>&1 || skip "no 32-bit loopctl or no IA32 emulation"; }

test_compat_legacy_set_and_get_status() {
	local img d out
	need32
	img=$(mkimg a.img 4M)
	d=$(bound_dev "$img")
	expect_ok set-status64 "$d" 0 0 0 compat-name
	# loopctl's set-status reads the struct with GET_STATUS first, so the name makes
	# a round trip through compat_loop_info.
	LOOPCTL=$LOOPCTL32 expect_ok set-status "$d" 8 1024
	out=$("$LOOPCTL32" get-status "$d")
	echo "$out" | grep -q "^OK number=${d#/dev/loop} offset=1024 flags=8 name=compat-name$" || fail "32-bit: $out"
	out=$("$LOOPCTL" get-status64 "$d")
	echo "$out" | grep -q "offset=1024 sizelimit=0 flags=8 " || fail "64-bit view: $out"
	assert_eq size $(((4194304 - 1024) / 512)) "$(sysblk "$d" size)"
}

test_compat_get_status_offset_overflow_is_eoverflow() {
	local img d
	need32
	img=$(mkimg a.img 3G)
	d=$(free_dev)
	expect_ok configure "$d" "$img" 0 0 2147483648 0
	LOOPCTL=$LOOPCTL32 expect_errno EOVERFLOW get-status "$d"
	LOOPCTL=$LOOPCTL32 expect_ok get-status64 "$d"
}

test_compat_ioctls_attach_and_detach() {
	local img d out
	need32
	img=$(mkimg a.img 4M)
	d=$(free_dev)
	LOOPCTL=$LOOPCTL32 expect_ok configure "$d" "$img" 0x8 4096 8192 1048576
	out=$("$LOOPCTL32" get-status64 "$d")
	echo "$out" | grep -q "offset=8192 sizelimit=1048576 flags=8 " || fail "$out"
	LOOPCTL=$LOOPCTL32 expect_ok set-bs "$d" 512
	LOOPCTL=$LOOPCTL32 expect_ok set-capacity "$d"
	LOOPCTL=$LOOPCTL32 expect_ok clr-fd "$d"
	LOOPCTL=$LOOPCTL32 expect_errno ENXIO get-status64 "$d"
}

test_compat_unknown_ioctl_is_enotty() {
	local img d
	need32
	img=$(mkimg a.img 4M)
	d=$(bound_dev "$img")
	# lo_compat_ioctl knows no other number (-ENOIOCTLCMD); the native entry says EINVAL.
	LOOPCTL=$LOOPCTL32 expect_errno ENOTTY raw "$d" 0x4C0B 0
	expect_errno EINVAL raw "$d" 0x4C0B 0
}

test_change_fd_requires_read_only() {
	local a b d
	a=$(mkimg a.img 1M)
	b=$(mkimg b.img 1M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$a"
	expect_errno EINVAL change-fd "$d" "$b"
}

test_change_fd_swaps_equal_sized_file() {
	local a b d
	a=$(mkimg a.img 1M)
	b=$(mkimg b.img 1M)
	pattern "$b" 0 4096 5
	d=$(free_dev)
	expect_ok set-fd "$d" "$a" ro
	expect_ok change-fd "$d" "$b" ro
	assert_eq backing "$b" "$(sysblk "$d" loop/backing_file)"
	assert_eq data "$(filesum "$b" 0 4096)" "$(filesum "$d" 0 4096)"
}

test_change_fd_other_size_is_einval() {
	local a b d
	a=$(mkimg a.img 1M)
	b=$(mkimg b.img 2M)
	d=$(free_dev)
	expect_ok set-fd "$d" "$a" ro
	expect_errno EINVAL change-fd "$d" "$b" ro
}

test_set_block_size_validation() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	expect_errno EINVAL set-bs "$d" 1000
	expect_errno EINVAL set-bs "$d" 256
	expect_ok set-bs "$d" 2048
	assert_eq lbs 2048 "$(sysblk "$d" queue/logical_block_size)"
}

test_set_dio_impossible_on_tmpfs_or_ok() {
	local img d r
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	r=$("$LOOPCTL" set-dio "$d" 1)
	case "$r" in
	OK*) assert_eq dio 1 "$(sysblk "$d" loop/dio)" ;;
	EINVAL) assert_eq dio 0 "$(sysblk "$d" loop/dio)" ;;
	*) fail "SET_DIRECT_IO: $r" ;;
	esac
}

test_clr_fd_twice_is_enxio() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	expect_ok clr-fd "$d"
	expect_errno ENXIO clr-fd "$d"
}

test_ctl_add_remove_errnos() {
	expect_ok ctl-add 50
	[ -b /dev/loop50 ] || fail "no /dev/loop50"
	expect_errno EEXIST ctl-add 50
	expect_ok ctl-remove 50
	[ ! -e /dev/loop50 ] || fail "/dev/loop50 still there"
	expect_errno ENODEV ctl-remove 50
	expect_errno EINVAL ctl-remove -1
}

test_ctl_remove_bound_is_ebusy() {
	local img
	img=$(mkimg a.img 1M)
	expect_ok ctl-add 51
	expect_ok set-fd /dev/loop51 "$img"
	expect_errno EBUSY ctl-remove 51
	expect_ok clr-fd /dev/loop51
	expect_ok ctl-remove 51
}

test_ctl_get_free_returns_unbound_device() {
	local img r n
	img=$(mkimg a.img 1M)
	r=$("$LOOPCTL" ctl-get-free)
	n=${r#OK }
	expect_ok set-fd /dev/loop$n "$img"
	r=$("$LOOPCTL" ctl-get-free)
	[ "${r#OK }" != "$n" ] || fail "GET_FREE returned the bound loop$n"
	[ -b /dev/loop${r#OK } ] || fail "no node for loop${r#OK }"
}

test_unknown_control_ioctl_is_enosys() {
	assert_eq errno ENOSYS "$("$LOOPCTL" raw /dev/loop-control 0x4C83 0)"
}

test_open_of_missing_node_creates_device() {
	"$LOOPCTL" ctl-remove 60 >/dev/null 2>&1 || true
	[ ! -e /dev/loop60 ] || fail "loop60 exists"
	mknod /tmp/rl-work/loop60 b 7 60
	"$LOOPCTL" get-status64 /tmp/rl-work/loop60 >/dev/null
	[ -b /dev/loop60 ] || fail "opening 7:60 did not create loop60"
	rm -f /tmp/rl-work/loop60
	"$LOOPCTL" ctl-remove 60 >/dev/null
}

test_status_change_needs_write_or_cap_sys_admin() {
	local img d
	img=$(mkimg a.img 1M)
	d=$(bound_dev "$img")
	chmod 666 "$d"
	# Unprivileged, read-only open: EPERM before anything is read.
	assert_eq unprivileged EPERM "$(setpriv --reuid 65534 --regid 65534 --clear-groups "$LOOPCTL" ro-open "$d" 0x4C04 0)"
	assert_eq "unprivileged set-bs" EPERM "$(setpriv --reuid 65534 --regid 65534 --clear-groups "$LOOPCTL" ro-open "$d" 0x4C09 4096)"
	# Root (CAP_SYS_ADMIN) passes the check and faults on the NULL pointer.
	assert_eq root EFAULT "$("$LOOPCTL" ro-open "$d" 0x4C04 0)"
	chmod 660 "$d"
}

test_uevents_on_attach_and_detach() {
	local img d n
	img=$(mkimg a.img 1M)
	d=$(free_dev)
	n=${d#/dev/}
	"$LOOPCTL" uevents 3 >"$WORK/ev" &
	sleep 0.5
	expect_ok set-fd "$d" "$img"
	expect_ok clr-fd "$d"
	wait
	grep -q "^change@/devices/virtual/block/$n .*DEVTYPE=disk" "$WORK/ev" || fail "events: $(cat "$WORK/ev")"
	[ "$(grep -c "^change@/devices/virtual/block/$n " "$WORK/ev")" -ge 2 ] || fail "fewer than 2 change events: $(cat "$WORK/ev")"
	grep -q "^change@/devices/virtual/block/$n .*DISK_MEDIA_CHANGE=1" "$WORK/ev" || fail "no media change at detach: $(cat "$WORK/ev")"
}

ktap_main ioctl_abi
