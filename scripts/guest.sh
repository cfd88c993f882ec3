#!/usr/bin/env bash
# Boot the test kernel in QEMU with rust_loop.ko, the reference loop.ko, null_blk.ko
# and the tests in an initramfs.
#   guest.sh check OUTDIR   run every test; KTAP results in OUTDIR/results.ktap,
#                           the console in OUTDIR/console.log
#   guest.sh smoke OUTDIR   the smoke test (make smoke), results as for check
#   guest.sh run            show rust_loop working; a shell when stdin is a terminal
# ACCEL=kvm uses KVM (hangs at boot on some machines; TCG is the default).
# ACCEL=icount: TCG with a virtual clock that counts guest instructions
#   (`-icount shift=1,sleep=off`: 2 ns per instruction, one host thread for both
#   vCPUs). Throughput then measures instructions per I/O, the same whatever else
#   the host does: an A/B instrument for CPU cost (rounds agree within 1%, where
#   real-time TCG rounds on a busy host differ by 40%), not a benchmark of speed.
#   Blind to parallelism (one host thread) and to device emulation (no virtual
#   time): a change that trades CPU for either is judged in real time
#   (docs/benchmark.md, "Session 20").
# GUEST_TIMEOUT (seconds) bounds every boot.
set -euo pipefail
. "$(dirname "$0")/env.sh"
mode=$1
out=${2:-$(mktemp -d)}
mkdir -p "$out"
B=$(RL_KBUILD)
[ -f "$B/.rust_loop-built" ] || die "no kernel build: run scripts/build-kernel.sh"
[ -f "$RL_ROOT/rust_loop.ko" ] || die "no rust_loop.ko: run make"
[ "$(modinfo -F vermagic "$RL_ROOT/rust_loop.ko" | cut -d' ' -f1)" = "$(cat "$B/include/config/kernel.release")" ] ||
	die "rust_loop.ko was built for another kernel than $B: run make (KVER=$KVER)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$RL_ROOT/scripts/mkinitramfs.sh" "$stage/base.cpio"
mkdir -p "$stage/root/tests/ko" "$stage/root/tests/bin"
cp -r "$RL_ROOT"/tests/{lib,guest,module,behaviour,reliability} "$stage/root/tests/"
cp "$RL_ROOT/tests/guest/init" "$stage/root/init"
cp "$RL_ROOT/rust_loop.ko" "$B/drivers/block/loop.ko" "$B/drivers/block/null_blk/null_blk.ko" \
	"$B/drivers/md/dm-mod.ko" "$B/drivers/block/ublk_drv.ko" "$stage/root/tests/ko/"
# BENCH_ALT_KO: a second rust_loop.ko (another commit or a variant, built for the
# same kernel) that the benchmark runs as rust_loop-alt in the same boot.
if [ -n "${BENCH_ALT_KO:-}" ]; then
	[ "$(modinfo -F vermagic "$BENCH_ALT_KO" | cut -d' ' -f1)" = "$(cat "$B/include/config/kernel.release")" ] ||
		die "BENCH_ALT_KO=$BENCH_ALT_KO was built for another kernel than $B"
	cp "$BENCH_ALT_KO" "$stage/root/tests/ko/rust_loop_alt.ko"
fi
# The module DKMS built on the host (scripts/dkms-check.sh), for dkms_module.sh.
if [ -f "${RL_DKMS_KO:-}" ]; then
	cp "$RL_DKMS_KO" "$stage/root/tests/ko/rust_loop_dkms.ko"
fi
# The ublk loop target for the benchmark, when the set-up could build it.
if command -v rublk >/dev/null; then
	mkdir -p "$stage/root/usr/local/bin"
	cp "$(command -v rublk)" "$stage/root/usr/local/bin/"
	for l in $(ldd "$(command -v rublk)" | grep -oE '/[^ ]+\.so[^ ]*'); do
		[ -e "$stage/root$l" ] || { mkdir -p "$stage/root$(dirname "$l")"; cp -L "$l" "$stage/root$l"; }
	done
fi
for t in loopctl stress; do
	gcc -static -O2 -Wall -o "$stage/root/tests/bin/$t" "$RL_ROOT/tests/tools/$t.c"
done
# The same loopctl as a 32-bit program, for the compat ioctl entry (gcc-multilib).
gcc -m32 -static -O2 -Wall -o "$stage/root/tests/bin/loopctl32" "$RL_ROOT/tests/tools/loopctl.c" 2>/dev/null ||
	log "warning: no 32-bit loopctl (gcc-multilib missing?): the compat tests will skip"
(cd "$stage/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$stage/overlay.cpio"
cat "$stage/base.cpio" "$stage/overlay.cpio" >"$stage/initrd.cpio"

accel=(-accel tcg -cpu max)
[ "${ACCEL:-tcg}" = kvm ] && accel=(-accel kvm -cpu host)
[ "${ACCEL:-tcg}" = icount ] && accel=(-accel tcg -icount shift=1,sleep=off -cpu max)
qemu=(qemu-system-x86_64 "${accel[@]}" -smp 2 -m 2G -kernel "$B/arch/x86/boot/bzImage"
	-initrd "$stage/initrd.cpio" -no-reboot -display none -monitor none -nodefaults)
append="console=ttyS0 panic=-1 oops=panic rl.mode=$mode rl.quick=${QUICK:-0}"
[ -n "${BENCH_BACKINGS:-}" ] && append="$append rl.bb=$BENCH_BACKINGS"
[ -n "${BENCH_RUNTIME:-}" ] && append="$append rl.rt=$BENCH_RUNTIME"
[ -n "${BENCH_ROUNDS:-}" ] && append="$append rl.rounds=$BENCH_ROUNDS"
[ -n "${BENCH_WORKLOADS:-}" ] && append="$append rl.wl=$BENCH_WORKLOADS"
[ "${BENCH_MEM:-1}" = 0 ] && append="$append rl.nomem"
# BENCH_CGROUP=1: fio runs in a child cgroup, not the root one (as on a systemd
# host, where nearly all I/O comes from a slice): rust_loop's per-cgroup workers.
[ "${BENCH_CGROUP:-0}" = 1 ] && append="$append rl.cgroup"
# BENCH_TRACE=1 (with a TRACE=1 kernel): where a read waits in the scale scenario,
# from the block layer's tracepoints (@@TRACE records in the raw output).
[ "${BENCH_TRACE:-0}" = 1 ] && append="$append rl.trace"
# BENCH_SCALE=1,4: the busy-device counts of the scale scenario; BENCH_SCALE=0: none.
if [ "${BENCH_SCALE:-}" = 0 ]; then
	append="$append rl.noscale"
elif [ -n "${BENCH_SCALE:-}" ]; then
	append="$append rl.scale=$BENCH_SCALE"
fi
[ -n "${RL_STRESS_SECS:-}" ] && append="$append rl.stress=$RL_STRESS_SECS"
[ -n "${RL_VERIFY_MB:-}" ] && append="$append rl.verify=$RL_VERIFY_MB"
[ -n "${RL_FAULT_STEP:-}" ] && append="$append rl.faultstep=$RL_FAULT_STEP"
[ -n "${RL_ONLY:-}" ] && append="$append rl.only=$RL_ONLY"
[ -n "${RL_SUITES:-}" ] && append="$append rl.suites=$RL_SUITES"
[ -n "${RL_REFERENCE:-}" ] && append="$append rl.reference=$RL_REFERENCE"
[ -n "${RL_LOGLEVEL:-}" ] && append="$append rl.loglevel=$RL_LOGLEVEL"
[ -n "${RL_TESTS:-}" ] && append="$append rl.tests=$RL_TESTS"
[ -n "${RL_SYNCED:-}" ] && append="$append rl.synced=$RL_SYNCED"
# A virtio disk: a backing store for the benchmark and tests; VDISK names a disk
# image that outlives the boot (the crash test boots twice over the same one).
vdisk=${VDISK:-$stage/vdisk.img}
[ -e "$vdisk" ] || truncate -s 512M "$vdisk"
qemu+=(-drive "file=$vdisk,if=virtio,format=raw,cache=writeback" -pidfile "$out/qemu.pid")
case "$mode" in
run)
	if [ -t 0 ]; then
		timeout --foreground "${GUEST_TIMEOUT:-86400}" "${qemu[@]}" -serial mon:stdio -serial null \
			-append "$append rl.shell=1"
	else
		timeout "${GUEST_TIMEOUT:-600}" "${qemu[@]}" -serial stdio -serial null -append "$append quiet"
	fi
	;;
*)
	log "booting the test guest (TCG: a few minutes; console: $out/console.log)"
	: >"$out/results.ktap"
	rc=0
	timeout "${GUEST_TIMEOUT:-1500}" "${qemu[@]}" -serial "file:$out/console.log" \
		-serial "file:$out/results.ktap" -append "$append" </dev/null || rc=$?
	[ $rc = 124 ] && log "guest timed out after ${GUEST_TIMEOUT:-1500}s"
	exit $rc
	;;
esac
