#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Crash consistency, the guest's half (scripts/crash.sh is the host's): two ext4
# filesystems on loop devices (buffered and direct I/O) whose backing files live on
# the virtio disk.
#   crash.sh write   set up, then write and fsync files forever, printing
#                    "SYNCED i" after file i is durable on both; the host kills QEMU.
#   crash.sh check N after the kill: every filesystem must recover and check clean,
#                    and files 1..N must hold exactly what was written.
LOOPCTL=${LOOPCTL:-/tests/bin/loopctl}
MODES="buf dio"
size_of() { echo $((($1 * 7919 % 60 + 4) * 1024)); }
attach() { # MODE
	if [ "$1" = dio ]; then
		losetup -f --show --direct-io=on /mnt/host/$1.img
	else
		losetup -f --show /mnt/host/$1.img
	fi
}

case "$1" in
write)
	mkfs.ext4 -q -F /dev/vda && mkdir -p /mnt/host && mount /dev/vda /mnt/host || exit 1
	for m in $MODES; do
		truncate -s 64M /mnt/host/$m.img
		dev=$(attach $m) || exit 1
		mkfs.ext4 -q "$dev" && mkdir -p /mnt/rl-$m && mount "$dev" /mnt/rl-$m || exit 1
	done
	sync
	echo "READY"
	i=0
	while :; do
		i=$((i + 1))
		for m in $MODES; do
			out=$("$LOOPCTL" fsync-write /mnt/rl-$m/f$i "$(size_of $i)" $i)
			[ "$out" = OK ] || { echo "# write f$i on $m: $out"; exit 1; }
			# Unsynced data in flight too, so the kill lands among dirty pages.
			dd if=/dev/urandom of=/mnt/rl-$m/junk bs=64k count=2 status=none
		done
		echo "SYNCED $i"
	done
	;;
check)
	n=$2 t=0
	ok() { t=$((t + 1)); echo "ok $t $1"; }
	notok() { t=$((t + 1)); echo "not ok $t $1"; shift; [ $# -gt 0 ] && printf '# %s\n' "$@"; }
	echo "KTAP version 1"
	echo "# suite: crash consistency"
	echo "1..$((2 + 3 * 2))"
	mkdir -p /mnt/host
	if mount /dev/vda /mnt/host; then ok backing_fs_mounts_after_crash; else notok backing_fs_mounts_after_crash; fi
	for m in $MODES; do
		dev=$(attach $m)
		mkdir -p /mnt/rl-$m
		if mount "$dev" /mnt/rl-$m && umount /mnt/rl-$m; then
			ok "loop_fs_${m}_recovers"
		else
			notok "loop_fs_${m}_recovers"
		fi
		if out=$(e2fsck -fn "$dev" 2>&1); then
			ok "loop_fs_${m}_checks_clean"
		else
			notok "loop_fs_${m}_checks_clean" "$(tail -5 <<<"$out")"
		fi
		mount "$dev" /mnt/rl-$m
		bad=0 first=
		for i in $(seq 1 "$n"); do
			r=$("$LOOPCTL" check-file /mnt/rl-$m/f$i "$(size_of $i)" $i)
			[ "$r" = OK ] || { bad=$((bad + 1)); first=${first:-"f$i: $r"}; }
		done
		if [ "$bad" = 0 ] && [ "$n" -gt 0 ]; then
			ok "all_${n}_fsynced_files_intact_$m"
		else
			notok "all_${n}_fsynced_files_intact_$m" "$bad of $n fsync'd files lost or wrong, first: $first"
		fi
		umount /mnt/rl-$m
		losetup -d "$dev"
	done
	umount /mnt/host
	if out=$(e2fsck -fn /dev/vda 2>&1); then ok backing_fs_checks_clean; else notok backing_fs_checks_clean "$(tail -5 <<<"$out")"; fi
	;;
esac
