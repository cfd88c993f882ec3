#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Minimal kselftest-style KTAP harness for rust_loop's shell tests.
#
# A test file defines functions named test_<behaviour>, sources this file and
# calls ktap_main. Each test runs in its own subshell with `set -e`; it passes when
# it returns 0, is skipped when it calls `skip "reason"` (exit 4), and fails
# otherwise; its output is printed as KTAP diagnostics ("# ...") on failure.
# After every test the harness detaches all loop devices and unmounts /mnt/rl*,
# so one failing test cannot poison the next.
#
# Environment from the guest runner:
#   LOOP_IMPL   rust_loop (default) or loop (the in-tree loop.ko, reference mode)
#   LOOPCTL     path of the loopctl tool

LOOP_IMPL=${LOOP_IMPL:-rust_loop}
LOOPCTL=${LOOPCTL:-/tests/bin/loopctl}
WORK=${WORK:-/tmp/rl-work}

# Documented loop.ko bugs that rust_loop fixes: a test names itself here with
# `loop_ko_bug "why"`; in reference mode its failure is reported as XFAIL.
loop_ko_bug() { [ "$LOOP_IMPL" = loop ] && echo "${1:-}" >"$WORK/.xfail" || true; }

skip() {
	echo "$*" >"$WORK/.skip"
	exit 4
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}
# expect_errno ERRNO loopctl-args...: the ioctl must fail with ERRNO.
expect_errno() {
	local want=$1 got
	shift
	got=$("$LOOPCTL" "$@" | head -1)
	[ "$got" = "$want" ] || fail "loopctl $*: expected $want, got '$got'"
}
expect_ok() {
	local got
	got=$("$LOOPCTL" "$@" | head -1)
	case "$got" in OK*) ;; *) fail "loopctl $*: expected OK, got '$got'" ;; esac
}

rl_cleanup() {
	local m d
	for m in $(awk '$2 ~ /^\/mnt\/rl/ {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	losetup -D 2>/dev/null || true
	for d in /dev/loop[0-9]*; do
		[ -b "$d" ] && "$LOOPCTL" clr-fd "$d" >/dev/null 2>&1 || true
	done
}

ktap_main() {
	local suite=$1 tests t n=0 rc out tag=""
	[ "$LOOP_IMPL" = loop ] && tag=" [loop.ko]"
	mkdir -p "$WORK"
	# In the order the file defines them.
	tests=$(grep -oE '^test_[A-Za-z0-9_]+' "$0")
	# RL_TESTS (a regular expression) narrows the run, for development.
	[ -n "${RL_TESTS:-}" ] && tests=$(grep -E "$RL_TESTS" <<<"$tests")
	echo "KTAP version 1"
	echo "# suite: $suite$tag"
	echo "1..$(echo "$tests" | grep -c .)"
	for t in $tests; do
		n=$((n + 1))
		rm -f "$WORK/.skip" "$WORK/.xfail"
		out=$( (set -e; cd "$WORK"; "$t") 2>&1 )
		rc=$?
		rl_cleanup
		local name="${t#test_}$tag"
		if [ -f "$WORK/.xfail" ]; then
			if [ $rc = 0 ]; then
				echo "not ok $n $name # loop.ko passed a test marked as a loop.ko bug"
			else
				echo "ok $n $name # XFAIL $(cat "$WORK/.xfail")"
			fi
		elif [ $rc = 0 ]; then
			echo "ok $n $name"
			# What a passing test measured, as its KTAP diagnostics ("# ...").
			grep '^# ' <<<"$out" || true
		elif [ $rc = 4 ]; then
			echo "ok $n $name # SKIP $(cat "$WORK/.skip" 2>/dev/null)"
		else
			echo "not ok $n $name"
			[ -n "$out" ] && printf '%s\n' "$out" | tail -30 | sed 's/^/# /'
		fi
	done
}

# --- helpers for behaviour tests -------------------------------------------
# mkimg NAME SIZE: a sparse image file in the work dir (tmpfs); prints its path.
mkimg() {
	local p=$WORK/$1
	rm -f "$p"
	truncate -s "$2" "$p"
	echo "$p"
}
# pattern FILE OFFSET BYTES SEED: writes deterministic data at OFFSET.
pattern() {
	awk -v n="$3" -v s="$4" 'BEGIN { srand(s); for (i = 0; i < n; i += 16) printf "%016d", int(rand() * 1e15) }' |
		head -c "$3" | dd of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none
}
# rangesum FILE OFFSET BYTES: sha256 (16 hex digits) of a byte range, read with
# O_DIRECT (so the device's own page cache cannot answer) in 4 KiB blocks where
# aligned, else 512-byte ones.
rangesum() {
	local bs=512
	[ $(($2 % 4096)) = 0 ] && [ $(($3 % 4096)) = 0 ] && bs=4096
	dd if="$1" bs=$bs skip=$(($2 / bs)) count=$(($3 / bs)) iflag=direct status=none | sha256sum | cut -c1-16
}
filesum() {
	dd if="$1" bs=512 skip=$(($2 / 512)) count=$(($3 / 512)) status=none | sha256sum | cut -c1-16
}
sysblk() { cat "/sys/block/${1#/dev/}/$2"; }
# listen OUT: netlink uevents go to OUT until `heard` (at most 5 s).
listen() {
	"$LOOPCTL" uevents 5 >"$1" &
	LISTENER=$!
	local i
	for i in $(seq 50); do
		grep -q READY "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "uevent listener did not start"
}
# heard: give the last events a moment, then stop listening.
heard() {
	sleep 0.5
	kill "$LISTENER" 2>/dev/null || true
	wait "$LISTENER" 2>/dev/null || true
}
# free_dev: the node of a free device (LOOP_CTL_GET_FREE).
free_dev() {
	local r
	r=$("$LOOPCTL" ctl-get-free)
	echo "/dev/loop${r#OK }"
}
# The scratch ext4 filesystem (on a memory-backed null_blk) for direct I/O and
# "filesystem full" tests; main.sh mounts it at /scratch.
SCRATCH=/scratch

# nullb_make NAME BLOCKSIZE MAX_SECTORS DISCARD ROTATIONAL [SIZE_MB]: a memory-backed
# null_blk (64 MiB unless told) with non-default limits, created through configfs.
NULLB_CFG=/sys/kernel/config/nullb
nullb_make() {
	[ -d $NULLB_CFG ] || skip "no null_blk configfs"
	local d=$NULLB_CFG/$1
	rmdir $d 2>/dev/null || true
	mkdir $d
	echo "${6:-64}" >$d/size
	echo "$2" >$d/blocksize
	echo "$3" >$d/max_sectors
	echo "$4" >$d/discard
	echo "$5" >$d/rotational
	echo 1 >$d/memory_backed
	echo 1 >$d/power
	[ -b /dev/$1 ] || fail "no /dev/$1"
}
nullb_rm() {
	echo 0 >$NULLB_CFG/$1/power 2>/dev/null
	rmdir $NULLB_CFG/$1 2>/dev/null
	true
}
