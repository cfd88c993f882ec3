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

# Flatten the KTAP that KUnit printed for our suite into a one-level KTAP stream.
kunit_results() {
	dmesg | sed 's/^\[[ 0-9.]*\] //' | awk '
		/# Subtest: rust_loop$/ { on = 1; n = 0; next }
		on && /^ *(not )?ok [0-9]+ rust_loop$/ { on = 0; next }
		on && /^ *(not )?ok [0-9]+ / { sub(/^ +/, ""); lines[++n] = $0; next }
		on && /^ *# / && !/# speed:/ { sub(/^ +/, ""); lines[++n] = $0 }
		END {
			c = 0; for (i = 1; i <= n; i++) if (lines[i] ~ /^(not )?ok /) c++
			print "KTAP version 1"; print "# suite: kunit rust_loop"; print "1.." c
			for (i = 1; i <= n; i++) print lines[i]
		}'
}

# One KTAP test that fails when the kernel log holds a splat.
splat_check() { # name
	local bad
	bad=$(dmesg | grep -E 'BUG:|WARNING:|Oops|Call Trace|kernel BUG|panicked|rust_kernel: panic|KASAN|UBSAN|hung_task|blocked for more than' | head -20)
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

behaviour_tests() { # impl
	local f
	shopt -s nullglob
	unload_all
	load "$1" || { echo "# could not load $1"; return; }
	scratch_up
	for f in $T/behaviour/*.sh; do
		LOOP_IMPL=$1 bash "$f"
	done
	rl_cleanup_all
	scratch_down
	unload_all
}
rl_cleanup_all() { losetup -D 2>/dev/null; true; }

case "$mode" in
check)
	dmesg -n 4
	echo 30 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
	{
		dmesg -C
		bash $T/module/lifecycle.sh
		kunit_results
		bash $T/module/dkms_module.sh
		splat_check module_tests
		behaviour_tests rust_loop
		splat_check rust_loop_behaviour
		dmesg -C
		behaviour_tests loop
		splat_check loop_ko_behaviour
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
