#!/usr/bin/env bash
# Crash consistency, the host's half (tests/reliability/crash.sh is the guest's):
# boot 1 writes and fsyncs files through loop devices whose backing files live on a
# virtio disk image; once RL_CRASH_FILES files are reported durable, QEMU is killed
# with SIGKILL (no shutdown, no flush by the guest); boot 2 over the same disk image
# checks that every file reported durable is intact and every filesystem checks clean.
#   crash.sh OUTDIR    prints KTAP on stdout
set -uo pipefail
. "$(dirname "$0")/env.sh"
out=$1
want=${RL_CRASH_FILES:-40}
disk=$out/crash-disk.img
rm -rf "$out/crash-write" "$out/crash-check" "$disk"
mkdir -p "$out/crash-write" "$out/crash-check"
truncate -s 512M "$disk"
w=$out/crash-write/results.ktap

VDISK=$disk GUEST_TIMEOUT=${GUEST_TIMEOUT:-900} "$RL_ROOT/scripts/guest.sh" crash-write "$out/crash-write" >/dev/null 2>&1 &
gpid=$!
start=$(date +%s)
n=0
while kill -0 $gpid 2>/dev/null; do
	n=$(grep -c '^SYNCED' "$w" 2>/dev/null || true)
	[ "${n:-0}" -ge "$want" ] && break
	[ $(($(date +%s) - start)) -gt 600 ] && break
	sleep 0.5
done
killed=0
if kill -0 $gpid 2>/dev/null && [ -s "$out/crash-write/qemu.pid" ]; then
	kill -9 "$(cat "$out/crash-write/qemu.pid")" && killed=1
fi
wait $gpid 2>/dev/null
synced=$(tr -d '\r' <"$w" | sed -n 's/^SYNCED \([0-9]*\)$/\1/p' | tail -1)
synced=${synced:-0}

echo "KTAP version 1"
echo "# suite: crash writer"
echo "1..1"
if [ $killed = 1 ] && [ "$synced" -ge "$want" ]; then
	echo "ok 1 qemu_killed_after_${want}_fsynced_files"
	echo "# $synced files reported durable on each loop device when QEMU got SIGKILL"
else
	echo "not ok 1 qemu_killed_after_${want}_fsynced_files"
	echo "# killed=$killed, $synced files durable; writer output:"
	tr -d '\r' <"$w" | grep -v '^SYNCED' | tail -10 | sed 's/^/# /'
	tail -15 "$out/crash-write/console.log" 2>/dev/null | sed 's/^/#   /'
	exit 0
fi
VDISK=$disk RL_SYNCED=$synced "$RL_ROOT/scripts/guest.sh" crash-check "$out/crash-check" >/dev/null 2>&1
r=$out/crash-check/results.ktap
tr -d '\r' <"$r" | grep -v '^# rust_loop: guest done'
if ! grep -q '^# rust_loop: guest done' "$r"; then
	printf 'KTAP version 1\n# suite: crash check\n1..1\nnot ok 1 crash_check_guest_finished\n'
	tail -15 "$out/crash-check/console.log" | sed 's/^/#   /'
fi
rm -f "$disk"
