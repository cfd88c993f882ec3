#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Differential parity with loop.ko: seeded random sequences of loop ioctls run
# against the driver under test, then (the two modules swap places in the same
# boot) against the other driver, must leave the same trace. After every step the
# trace records the ioctl's outcome and everything a user or a tool can see of the
# device without opening it: LOOP_GET_STATUS64, the disk's sysfs attributes, its
# loop/ and queue/ files, its partitions, the kernel log lines and the uevents
# the step caused. The hand-written tests look at what their author thought of;
# this one looks at all of it, for sequences nobody wrote.
#
# Left out because they differ by design (README, "Deliberate differences from
# loop.ko", each with its own test): queue/nr_requests and queue/async_depth
# (rust_loop's shared tag set); the `ro` of an unbound device and the DISK_RO=0
# change uevent (rust_loop clears a read-only binding's `ro` at detach, loop.ko
# keeps it); block sizes that LOOP_CONFIGURE refuses (loop.ko leaves state
# behind); the uevents of a failed LOOP_CHANGE_FD (loop.ko sends one on
# failure). Counters that move with time or with I/O (stat, inflight,
# diskseq) are not part of the trace.
. /tests/lib/ktap.sh
KO=/tests/ko
DEV=/dev/loop0
SYS=/sys/block/loop0

# The backing files, rewritten in place before each run (same inodes for both
# drivers): A and B 8 MiB with a DOS partition table (two partitions), C 4 MiB,
# S 8 MiB on the scratch ext4 (direct I/O there goes to the disk).
files_up() {
	local f
	for f in "$WORK/dA.img" "$WORK/dB.img" "$SCRATCH/dS.img"; do
		truncate -s 0 "$f" && truncate -s 8M "$f"
	done
	truncate -s 0 "$WORK/dC.img" && truncate -s 4M "$WORK/dC.img"
	printf 'label: dos\n2048,4096,83\n6144,,83\n' | sfdisk -q "$WORK/dA.img" >/dev/null
	printf 'label: dos\n2048,4096,83\n6144,,83\n' | sfdisk -q "$WORK/dB.img" >/dev/null
}

# What a user or a tool sees now (without opening the device: an open and close
# detaches an autoclear device).
snapshot() {
	local f
	echo "status64: $("$LOOPCTL" get-status64 $DEV)"
	for f in size ro removable ext_range range capability alignment_offset discard_alignment \
		events events_async hidden; do
		[ "$f" = ro ] && [ ! -e $SYS/loop ] && continue
		echo "$f: $(cat $SYS/$f 2>/dev/null)"
	done
	if [ -d $SYS/loop ]; then
		for f in $SYS/loop/*; do echo "loop/${f##*/}: $(cat "$f" 2>/dev/null)"; done
	else
		echo "loop/: none"
	fi
	for f in $SYS/queue/*; do
		[ -f "$f" ] || continue
		case ${f##*/} in nr_requests | async_depth) continue ;; esac
		echo "queue/${f##*/}: $(cat "$f" 2>/dev/null)"
	done
	for f in $SYS/loop0p*; do
		[ -d "$f" ] && echo "partition ${f##*/}: $(cat "$f/start") $(cat "$f/size")"
	done
	true
}

# One step of a sequence: a random operation (loopctl arguments) in OP. No
# subshells here: they would not advance the parent's $RANDOM.
R=0
pick() { R=$((RANDOM % $1)); }
pick_file() {
	local f=("$WORK/dA.img" "$WORK/dA.img" "$WORK/dB.img" "$WORK/dC.img" "$SCRATCH/dS.img")
	pick ${#f[@]}
	F=${f[$R]}
}
pick_flags() { # LO_FLAGS_*: read-only 1, autoclear 4, partscan 8, direct I/O 16, unknown 64
	FL=0
	pick 4 && [ $R = 0 ] && FL=$((FL | 1))
	pick 5 && [ $R = 0 ] && FL=$((FL | 4))
	pick 2 && [ $R = 0 ] && FL=$((FL | 8))
	pick 3 && [ $R = 0 ] && FL=$((FL | 16))
	pick 12 && [ $R = 0 ] && FL=$((FL | 64))
	true
}
pick_offset() { local o=(0 0 512 4096 1048576 3145728); pick ${#o[@]}; OFF=${o[$R]}; }
pick_limit() { local l=(0 0 0 1048576 2097152 4194304); pick ${#l[@]}; LIM=${l[$R]}; }
step() {
	local ro="" bs cur
	pick 4
	[ $R = 0 ] && ro=ro
	pick 12
	case $R in
	0 | 1) pick_file; OP="set-fd $DEV $F $ro" ;;
	2 | 3)
		bs=(0 0 512 1024 4096)
		pick_file; pick_flags; pick_offset; pick_limit; pick 5
		OP="configure $DEV $F $FL ${bs[$R]} $OFF $LIM $ro"
		;;
	4) pick_flags; pick_offset; pick_limit; OP="set-status64 $DEV $FL $OFF $LIM" ;;
	5) OP="set-capacity $DEV" ;;
	6) pick 2; OP="set-dio $DEV $R" ;;
	7) bs=(512 1024 2048 4096 8192 1000 0); pick 7; OP="set-bs $DEV ${bs[$R]}" ;;
	8)
		# To a file of the same size only (another size: a deliberate difference).
		cur=$("$LOOPCTL" get-status64 $DEV | sed -n 's/.* name=\(.*\)$/\1/p')
		case $cur in
		"$WORK/dA.img") OP="change-fd $DEV $WORK/dB.img $ro" ;;
		"$WORK/dB.img") OP="change-fd $DEV $WORK/dA.img $ro" ;;
		*) OP="get-status $DEV" ;;
		esac
		;;
	9) OP="clr-fd $DEV" ;;
	10) pick_file; pick 3; OP="resize $F $(((1 + R) * 4))M" ;;
	11) pick_flags; pick_offset; OP="set-status $DEV $FL $OFF" ;;
	esac
}

# mark: a uevent of /dev/null's device after a step, waited for: netlink keeps a
# socket's order, so every uevent the step caused is in the listener's output
# before it, however late the listener runs (no sleep to guess).
MARK='@/devices/virtual/mem/null'
mark() {
	local want i
	want=$(($(grep -c "$MARK" $ev || true) + 1))
	echo change >/sys/devices/virtual/mem/null/uevent
	for i in $(seq 200); do
		[ "$(grep -c "$MARK" $ev || true)" -ge $want ] && return 0
		sleep 0.05
	done
	fail "the uevent listener did not hear the mark"
}

# trace SEED STEPS: runs a sequence and prints its trace.
trace() {
	local seed=$1 steps=$2 i op res ev=$WORK/d.ev n0 n1 k0 k1
	files_up
	"$LOOPCTL" clr-fd $DEV >/dev/null 2>&1
	"$LOOPCTL" uevents $((steps + 30)) >$ev &
	local listener=$!
	until grep -q READY $ev 2>/dev/null; do sleep 0.1; done
	RANDOM=$seed
	for i in $(seq 1 "$steps"); do
		step
		op=$OP
		n0=$(wc -l <$ev) k0=$(dmesg | wc -l)
		echo "step $i: $op"
		case $op in
		resize*)
			set -- $op
			truncate -s "$3" "$2"
			res=OK
			echo "result: $res"
			;;
		*)
			res=$("$LOOPCTL" $op | head -1)
			echo "result: $res"
			;;
		esac
		mark
		n1=$(($(grep -n "$MARK" $ev | tail -1 | cut -d: -f1) - 1)) k1=$(dmesg | wc -l)
		# A failed LOOP_CHANGE_FD sends a change uevent on loop.ko only (deliberate).
		case "$op $res" in change-fd*OK*) ;; change-fd*) n0=$n1 ;; esac
		sed -n "$((n0 + 1)),${n1}p" $ev | sed 's/^/uevent: /'
		# The block layer's capacity-change line is rate-limited (printk_ratelimited):
		# which of them print depends on timing; the size and the RESIZE uevent say
		# the same. The clock and RCU lines are the emulated machine's.
		dmesg | sed -n "$((k0 + 1)),${k1}p" | sed 's/^\[[ 0-9.]*\] /log: /' |
			grep -vE 'detected capacity change|callbacks suppressed|clocksource|rcu|hrtimer' || true
		snapshot
	done
	"$LOOPCTL" clr-fd $DEV >/dev/null 2>&1
	kill $listener 2>/dev/null
	wait $listener 2>/dev/null || true
	true
}

swap_to() { # rust_loop | loop
	losetup -D 2>/dev/null
	rmmod rust_loop 2>/dev/null
	rmmod loop 2>/dev/null
	if [ "$1" = loop ]; then insmod $KO/loop.ko; else insmod $KO/rust_loop.ko; fi
	for _ in $(seq 50); do [ -b $DEV ] && return 0; sleep 0.1; done
	return 1
}

# Seeds and steps: RL_DIFF_SEEDS (4) sequences of RL_DIFF_STEPS (30) steps.
test_random_ioctl_sequences_leave_loop_kos_trace() {
	mountpoint -q $SCRATCH || skip "no scratch ext4"
	[ -f $KO/loop.ko ] && [ -f $KO/rust_loop.ko ] || skip "needs both modules"
	local other=loop seeds=${RL_DIFF_SEEDS:-4} steps=${RL_DIFF_STEPS:-30} s
	[ "$LOOP_IMPL" = loop ] && other=rust_loop
	# Both runs start from a freshly loaded module: a device keeps some queue
	# limits of its last binding (read_ahead_kb, discard, write cache) on either
	# driver, and the earlier test files used this one's devices.
	swap_to "$LOOP_IMPL" || fail "could not load $LOOP_IMPL again"
	for s in $(seq 1 "$seeds"); do trace $((s * 7919)) "$steps"; done >"$WORK/d.mine"
	swap_to $other || { swap_to "$LOOP_IMPL"; fail "could not load $other"; }
	for s in $(seq 1 "$seeds"); do trace $((s * 7919)) "$steps"; done >"$WORK/d.other"
	swap_to "$LOOP_IMPL" || fail "could not load $LOOP_IMPL again"
	echo "# $seeds sequences of $steps steps, $(wc -l <"$WORK/d.mine") trace lines each driver"
	sed -i '/^uevent: .* DISK_RO=0/d' "$WORK/d.mine" "$WORK/d.other"
	if ! diff -u "$WORK/d.other" "$WORK/d.mine" >"$WORK/d.diff"; then
		echo "--- $other, +++ $LOOP_IMPL: the first differences and the step before them"
		head -60 "$WORK/d.diff"
		fail "the traces differ ($(grep -c '^[-+][^-+]' "$WORK/d.diff") lines)"
	fi
}

ktap_main differential
