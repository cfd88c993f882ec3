#!/bin/bash
# Runs inside the guest. Modes:
#   check  all tests: module lifecycle, KUnit, behaviour tests against rust_loop.ko,
#          then the same behaviour tests against the in-tree loop.ko (reference).
#   smoke  load, attach, I/O, mount -o loop, detach, unload (make smoke), and the
#          DKMS-built module.
#   run    load rust_loop.ko, show it working, then a shell if the console is a tty.
# KTAP results go to /dev/ttyS1 (the host's results file), chatter to the console.
mode=$1
T=/tests
KO=$T/ko
export LOOPCTL=$T/bin/loopctl WORK=/tmp/rl-work
# Sizes of the reliability tests, from the kernel command line (check.sh sets them;
# the debug run uses longer ones).
arg() { sed -n "s/.*rl\.$1=\([0-9]*\).*/\1/p" /proc/cmdline; }
# Console log level (rl.loglevel=7 shows the stacks of hung tasks on the console).
loglevel() { echo "${1:-4}"; }
export RL_STRESS_SECS=$(arg stress) RL_VERIFY_MB=$(arg verify) RL_FAULT_STEP=$(arg faultstep)
: "${RL_STRESS_SECS:=60}" "${RL_VERIFY_MB:=64}" "${RL_FAULT_STEP:=1}"
results=/dev/ttyS1
[ -c $results ] || results=/dev/console

load() { # load rust_loop|loop
	if [ "$1" = loop ]; then insmod $KO/loop.ko; else insmod $KO/rust_loop.ko; fi
}
unload_all() {
	rmmod rust_loop 2>/dev/null
	rmmod loop 2>/dev/null
	true
}

# Flatten the KTAP that KUnit printed for our suites (rust_loop, rust_loop_plug, ...)
# into a one-level KTAP stream.
kunit_results() {
	dmesg | sed 's/^\[[ 0-9.]*\] //' | awk '
		# Each insmod runs the suites again: only the last load counts (rust_loop first).
		/# Subtest: rust_loop$/ { n = 0; k = 0 }
		/# Subtest: rust_loop(_[a-z_]+)?$/ { on = 1; next }
		on && /^ *(not )?ok [0-9]+ rust_loop(_[a-z_]+)?$/ { on = 0; next }
		on && /^ *(not )?ok [0-9]+ / {
			sub(/^ +/, ""); sub(/ok [0-9]+ /, "ok " (++k) " "); lines[++n] = $0; next
		}
		on && /^ *# / && !/# speed:/ { sub(/^ +/, ""); lines[++n] = $0 }
		END {
			c = 0; for (i = 1; i <= n; i++) if (lines[i] ~ /^(not )?ok /) c++
			print "KTAP version 1"; print "# suite: kunit rust_loop"; print "1.." c
			for (i = 1; i <= n; i++) print lines[i]
		}'
}

# The headers of every kind of kernel report: BUG/WARN (lockdep, DEBUG_OBJECTS and
# sleeping-in-atomic print one of these too), oopses, KASAN, UBSAN, Rust panics,
# hung tasks, stalls and lockups. A call trace alone is not one: the fault-injection
# tests make the allocator print "page allocation failure" with a stack dump.
SPLAT='BUG:|WARNING:|Oops|kernel BUG|general protection|panicked|Kernel panic|rust_kernel: panic|KASAN|UBSAN|hung_task|blocked for more than|INFO: |stall|LOCKUP|lockup|ODEBUG|list_(add|del) corruption|unreferenced object'

# One KTAP test that fails when the kernel log holds a splat.
splat_check() { # name
	local bad
	bad=$(dmesg | grep -E "$SPLAT" | head -20)
	echo "KTAP version 1"
	echo "# suite: kernel log after $1"
	echo "1..1"
	if [ -z "$bad" ]; then
		echo "ok 1 no_kernel_splat_after_$1"
	else
		echo "not ok 1 no_kernel_splat_after_$1"
		printf '%s\n' "$bad" | sed 's/^/# /'
	fi
}

# A memory-backed ext4 at /scratch for direct I/O and full-filesystem tests.
scratch_up() {
	insmod $KO/null_blk.ko nr_devices=1 gb=1 memory_backed=1 bs=512 2>/dev/null || return 0
	mkfs.ext4 -q -F /dev/nullb0 && mkdir -p /scratch && mount /dev/nullb0 /scratch
}
scratch_down() {
	umount /scratch 2>/dev/null
	rmmod null_blk 2>/dev/null
	true
}

# rl.suites=a.sh,b.sh (RL_SUITES, paths under tests/): the check runs only these of
# the behaviour and reliability files (CI's short debug pass); default all of them.
SUITES=$(sed -n 's/.*rl\.suites=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
wanted() { [ -z "$SUITES" ] || [[ " $SUITES " == *" ${1#$T/} "* ]]; }
# One test file, with how long it took as a KTAP diagnostic (where a run's time goes).
run_file() { # impl file [VAR=value ...]
	local impl=$1 f=$2 t0=$SECONDS
	shift 2
	wanted "$f" || return 0
	env LOOP_IMPL="$impl" "$@" bash "$f"
	echo "# time: ${f#$T/} ($impl) $((SECONDS - t0)) s"
}

behaviour_tests() { # impl
	local f
	shopt -s nullglob
	unload_all
	load "$1" || { echo "# could not load $1"; return; }
	scratch_up
	for f in $T/behaviour/*.sh $T/reliability/faults.sh; do
		run_file "$1" "$f"
	done
	# Data integrity; the reference run only needs to show the test is right.
	if [ "$1" = rust_loop ]; then
		run_file "$1" $T/reliability/integrity.sh
	else
		run_file "$1" $T/reliability/integrity.sh RL_VERIFY_MB=64
	fi
	# The stress test hunts rust_loop's races; loop.ko is not its subject.
	[ "$1" = rust_loop ] && run_file "$1" $T/reliability/stress.sh
	rl_cleanup_all
	scratch_down
	unload_all
}
rl_cleanup_all() { losetup -D 2>/dev/null; true; }

# kmemleak (debug kernel): two scans after rust_loop is unloaded; anything still
# unreferenced that was allocated since the last "clear" is a leak.
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak_clear() { [ -w $KMEMLEAK ] && echo clear >$KMEMLEAK; true; }
kmemleak_check() { # name
	echo "KTAP version 1"
	echo "# suite: kmemleak after $1"
	echo "1..1"
	if [ ! -w $KMEMLEAK ]; then
		echo "ok 1 no_leaks_after_$1 # SKIP no kmemleak in this kernel"
		return
	fi
	echo scan >$KMEMLEAK
	sleep 6
	echo scan >$KMEMLEAK
	local leaks
	leaks=$(cat $KMEMLEAK)
	if [ -z "$leaks" ]; then
		echo "ok 1 no_leaks_after_$1"
	else
		echo "not ok 1 no_leaks_after_$1"
		echo "# kmemleak: $(grep -c 'unreferenced object' <<<"$leaks") unreferenced objects"
		printf '%s\n' "$leaks" | head -60 | sed 's/^/# /'
	fi
}

case "$mode" in
check)
	dmesg -n 4
	echo 30 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
	{
		dmesg -C
		kmemleak_clear
		# CI's debug pass lists the smoke test too: one boot instead of two.
		[ -n "$SUITES" ] && wanted $T/module/smoke.sh && { bash $T/module/smoke.sh; unload_all; }
		bash $T/module/lifecycle.sh
		kunit_results
		bash $T/module/dkms_module.sh
		splat_check module_tests
		behaviour_tests rust_loop
		splat_check rust_loop_behaviour
		kmemleak_check rust_loop
		# rl.reference=0 (RL_REFERENCE=0) leaves out the loop.ko reference run.
		if [ "$(arg reference)" != 0 ]; then
			dmesg -C
			behaviour_tests loop
			splat_check loop_ko_behaviour
		fi
		echo "# rust_loop: guest done"
	} >$results 2>&1
	;;
smoke)
	dmesg -n 4
	{
		dmesg -C
		bash $T/module/smoke.sh
		bash $T/module/dkms_module.sh
		unload_all
		splat_check smoke
		echo "# rust_loop: guest done"
	} >$results 2>&1
	;;
bench)
	dmesg -n 4
	quick=$(sed -n 's/.*rl\.quick=\([01]\).*/\1/p' /proc/cmdline)
	{
		bash $T/guest/bench.sh "${quick:-0}"
		echo "# rust_loop: guest done"
	} >$results 2>&1
	;;
subset)
	# RL_ONLY=file1,file2 (paths under tests/): only those, on both drivers.
	dmesg -n "$(loglevel "$(arg loglevel)")"
	echo 30 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
	only=$(sed -n 's/.*rl\.only=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
	RL_TESTS=$(sed -n 's/.*rl\.tests=\([^ ]*\).*/\1/p' /proc/cmdline)
	export RL_TESTS
	{
		for impl in rust_loop loop; do
			dmesg -C
			unload_all
			load $impl
			[ $impl = rust_loop ] && kunit_results
			scratch_up
			for f in $only; do LOOP_IMPL=$impl bash $T/$f; done
			rl_cleanup_all
			scratch_down
			unload_all
			splat_check "$impl"
		done
		echo "# rust_loop: guest done"
	} >$results 2>&1
	;;
crash-write)
	dmesg -n 4
	load rust_loop
	bash $T/reliability/crash.sh write >$results 2>&1
	;;
crash-check)
	dmesg -n 4
	load rust_loop
	{
		bash $T/reliability/crash.sh check "$(arg synced)"
		rl_cleanup_all
		unload_all
		splat_check crash_recovery
		echo "# rust_loop: guest done"
	} >$results 2>&1
	;;
run)
	load rust_loop && echo "rust_loop.ko loaded"
	bash $T/guest/demo.sh
	if [ -t 0 ] && grep -q 'rl.shell=1' /proc/cmdline; then
		echo "Shell in the guest (rust_loop.ko loaded; tests in /tests). 'exit' powers off."
		setsid -c bash -l
	fi
	;;
*)
	echo "unknown mode $mode"
	;;
esac
