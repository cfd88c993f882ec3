#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fault injection during attach and during I/O: failslab and fail_page_alloc.
# Attach: every fault-injection site that LOOP_CONFIGURE (and LOOP_CTL_ADD) reaches is
# failed once, one run per site (/proc/thread-self/fail-nth), until a run reaches no
# site any more. Each run must either succeed or fail with ENOMEM and leave the
# device exactly as it was; the device must then attach normally.
# I/O: one allocation in five of the process doing direct I/O fails (task filter);
# each I/O must succeed or fail with EIO/ENOMEM (ENOSPC: null_blk's own), never hang,
# and the device must work again and detach cleanly once injection stops. Most such
# failures hit the block layer above the driver; rust_loop itself allocates nothing per
# request on these paths except remap clones, which come from a mempool-backed bio_set.
. /tests/lib/ktap.sh
D=/sys/kernel/debug
MAXN=${RL_FAULT_MAXN:-1500}
# RL_FAULT_STEP=k fails every k-th site only (1, 1+k, ...; CI's debug pass, where one
# run takes seconds under KASAN); the sweep still ends at the first run past the last.
STEP=${RL_FAULT_STEP:-1}
every=""
[ "$STEP" = 1 ] || every=" (every ${STEP}th)"

fault_on() { # failslab|fail_page_alloc: arm for fail-nth/task-filter use, quietly
	[ -d $D/$1 ] || skip "no $1"
	echo 0 >$D/$1/verbose
	echo N >$D/$1/ignore-gfp-wait
	if [ "$1" = fail_page_alloc ]; then
		echo 0 >$D/$1/min-order
		echo N >$D/$1/ignore-gfp-highmem
	fi
}
fault_off() {
	local k
	for k in failslab fail_page_alloc; do
		[ -d $D/$k ] || continue
		echo 0 >$D/$k/probability
		echo N >$D/$k/task-filter
		echo Y >$D/$k/ignore-gfp-wait
	done
	echo 1 >$D/fail_page_alloc/min-order 2>/dev/null
	true
}
unbound() { # DEV: nothing attached, no size
	[ ! -e /sys/block/${1#/dev/}/loop/backing_file ] && [ "$(sysblk "$1" size)" = 0 ]
}

test_configure_fails_cleanly_at_every_allocation_site() {
	local kind="failslab+fail_page_alloc" img dev n out res injected=0 enomem=0 survived=0
	fault_on failslab
	fault_on fail_page_alloc
	img=$(mkimg f.img 8M)
	pattern "$img" 0 65536 5
	dev=$(losetup -f)
	for n in $(seq 1 "$STEP" $MAXN); do
		out=$(LOOPCTL_FAIL_NTH=$n "$LOOPCTL" configure "$dev" "$img" 0 512 0 0)
		res=$(head -1 <<<"$out")
		grep -q '^FAULT unused' <<<"$out" && { [ "${res%% *}" = OK ] || fail "run $n: no fault injected, yet $res"; break; }
		injected=$((injected + 1))
		case "$res" in
		OK*)
			survived=$((survived + 1))
			assert_eq "data after an attach that survived fault $n" "$(filesum "$img" 0 65536)" "$(rangesum "$dev" 0 65536)"
			;;
		ENOMEM)
			enomem=$((enomem + 1))
			unbound "$dev" || fail "fault $n: ENOMEM but the device is left bound or sized"
			;;
		*) fail "fault $n: LOOP_CONFIGURE gave $res (want OK or ENOMEM)" ;;
		esac
		"$LOOPCTL" clr-fd "$dev" >/dev/null
		unbound "$dev" || fail "fault $n: device did not detach"
		[ "$res" = ENOMEM ] || continue
		expect_ok configure "$dev" "$img" 0 512 0 0
		"$LOOPCTL" clr-fd "$dev" >/dev/null
	done
	[ "$n" -le $((MAXN - STEP)) ] || fail "more than $MAXN fault sites: raise RL_FAULT_MAXN"
	[ "$injected" -gt 0 ] || fail "LOOP_CONFIGURE reached no fault-injection site"
	fault_off
	echo "# $kind in LOOP_CONFIGURE [$LOOP_IMPL]: $injected sites failed one at a time$every: $enomem ENOMEM with the device left unbound, $survived absorbed" >>"$WORK/.faults"
}

test_ctl_add_fails_cleanly_at_every_failslab_site() {
	local n out res injected=0 enomem=0
	fault_on failslab
	"$LOOPCTL" ctl-remove 200 >/dev/null
	for n in $(seq 1 "$STEP" $MAXN); do
		out=$(LOOPCTL_FAIL_NTH=$n "$LOOPCTL" ctl-add 200)
		res=$(head -1 <<<"$out")
		grep -q '^FAULT unused' <<<"$out" && break
		injected=$((injected + 1))
		case "$res" in
		OK*) ;;
		ENOMEM)
			enomem=$((enomem + 1))
			[ ! -e /sys/block/loop200 ] || fail "fault $n: ENOMEM but loop200 exists"
			;;
		*) echo "# fault $n: LOOP_CTL_ADD gave $res" >>"$WORK/.faults-odd" ;;
		esac
		"$LOOPCTL" ctl-remove 200 >/dev/null
		[ ! -e /sys/block/loop200 ] || fail "fault $n: loop200 not removed"
	done
	[ "$n" -le $((MAXN - STEP)) ] || fail "more than $MAXN fault sites"
	[ "$injected" -gt 0 ] || fail "LOOP_CTL_ADD reached no fault-injection site"
	fault_off
	echo "# failslab in LOOP_CTL_ADD [$LOOP_IMPL]: $injected sites failed one at a time$every, $enomem ENOMEM" >>"$WORK/.faults"
}

io_under_faults() { # KIND LABEL losetup-args...
	local kind=$1 label=$2 dev out
	shift 2
	fault_on "$kind"
	dev=$(losetup -f --show "$@")
	# The filter first: between "probability" and "task-filter", everything fails.
	echo Y >$D/$kind/task-filter
	echo -1 >$D/$kind/times
	echo 20 >$D/$kind/probability
	out=$(timeout 120 "$LOOPCTL" fault-io "$dev" 256) || { fault_off; fail "I/O under $kind hung or died: $out"; }
	fault_off
	case "$out" in
	*ok=0\ *) fail "no I/O got through at all under $kind: $out" ;;
	*other=0) ;;
	*) fail "I/O under $kind: $out (only EIO, ENOMEM or the backing device's ENOSPC may fail)" ;;
	esac
	# Working again: a fresh pattern goes through and comes back.
	head -c 262144 /dev/urandom >"$WORK/in"
	dd if="$WORK/in" of="$dev" bs=64k oflag=direct status=none
	assert_eq "data after faults" "$(sha256sum <"$WORK/in" | cut -c1-16)" "$(rangesum "$dev" 0 262144)"
	losetup -d "$dev"
	unbound "$dev" || fail "did not detach after $kind"
	echo "# $kind on the I/O task, $label [$LOOP_IMPL]: 256 I/Os, 20% of allocations failing: ${out#OK }" >>"$WORK/.faults"
}

test_io_under_failslab_file_backing() {
	io_under_faults failslab "file" "$(mkimg io.img 8M)"
}

test_io_under_failslab_direct_io() {
	mountpoint -q $SCRATCH || skip "no scratch filesystem"
	truncate -s 8M $SCRATCH/io.img
	io_under_faults failslab "file, direct I/O" --direct-io=on $SCRATCH/io.img
	rm -f $SCRATCH/io.img
}

# From a cgroup other than the root: rust_loop makes the cgroup's worker on its
# first hand-off without sleeping, in the failing task's context; when that fails
# the device's first worker serves the request. Buffered writes to the scratch
# filesystem are never finished in ->queue_rq, so every write is handed over.
test_io_under_failslab_from_a_cgroup() {
	local cg=/sys/fs/cgroup/rlfaults
	mountpoint -q $SCRATCH || skip "no scratch filesystem"
	mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup || skip "no cgroup2"
	rmdir $cg 2>/dev/null || true
	mkdir $cg
	echo $BASHPID >$cg/cgroup.procs
	truncate -s 8M $SCRATCH/io.img
	io_under_faults failslab "file, from a cgroup" $SCRATCH/io.img
	echo $BASHPID >/sys/fs/cgroup/cgroup.procs
	rmdir $cg
	rm -f $SCRATCH/io.img
}

test_io_under_failslab_block_backing() {
	nullb_make rlnbf 512 256 1 0 16
	io_under_faults failslab "block device" /dev/rlnbf
	nullb_rm rlnbf
}

test_io_under_fail_page_alloc_block_backing() {
	nullb_make rlnbf 512 256 1 0 16
	io_under_faults fail_page_alloc "block device" /dev/rlnbf
	nullb_rm rlnbf
}

rm -f "$WORK/.faults" "$WORK/.faults-odd"
ktap_main faults
fault_off
cat "$WORK/.faults" "$WORK/.faults-odd" 2>/dev/null
true
