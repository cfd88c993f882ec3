#!/usr/bin/env bash
# Build the guest's base initramfs: busybox-static for the basics, with the host's
# util-linux, e2fsprogs, fio, kmod, dmsetup and bash (plus their shared libraries)
# in /usr, ahead of busybox in PATH, so losetup/mount behave exactly as for users.
# Cached by the hash of this script and of the binaries it copies.
# Usage: mkinitramfs.sh OUT.cpio
set -euo pipefail
. "$(dirname "$0")/env.sh"
out=$1

BINS="bash losetup mount umount blockdev sfdisk lsblk findmnt fallocate wipefs partx
blkid mkfs.ext4 mke2fs e2fsck fsck.ext4 debugfs fio modinfo insmod rmmod lsmod dmsetup
mksquashfs stat dd cmp sha256sum truncate sync timeout nproc flock getopt setpriv
unshare nsenter mountpoint dmesg udevadm blkdiscard xxd od"
# RL_EXTRA_BINS="perf": more host programs for ad-hoc work in the guest (profiling).
BINS="$BINS ${RL_EXTRA_BINS:-}"
paths=
for b in $BINS; do
	p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$b" || true)
	[ -n "$p" ] && paths="$paths $(readlink -f "$p")=$p"
done
key=$( { cat "$0"; for e in $paths; do sha256sum "${e%%=*}"; done; sha256sum /bin/busybox; } | sha256sum | cut -c1-12)
cached=$RL_CACHE/initramfs-base-$key.cpio
if [ -f "$cached" ]; then
	cp "$cached" "$out"
	exit 0
fi
log "building the guest's base initramfs"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,mnt,run,etc,root}
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	case "$a" in init | linuxrc) continue ;; esac # a failing /init must panic, not hang
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
libs=
for e in $paths; do
	real=${e%%=*} name=${e#*=}
	dest=$root/usr/bin/${name##*/}
	case "$name" in */sbin/*) dest=$root/usr/sbin/${name##*/} ;; esac
	cp "$real" "$dest"
	libs="$libs $(ldd "$real" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' || true)"
done
for l in $(echo "$libs" | tr ' ' '\n' | sort -u); do
	mkdir -p "$root$(dirname "$l")"
	cp -L "$l" "$root$l"
done
ln -sf /usr/bin/bash "$root/bin/bash"
# Name lookups for `setpriv --reuid nobody` and friends.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
: >"$root/etc/fstab"
mkdir -p "$RL_CACHE"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$cached.tmp"
mv "$cached.tmp" "$cached"
cp "$cached" "$out"
log "base initramfs: $(du -h "$cached" | cut -f1)"
