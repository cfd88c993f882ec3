#!/bin/bash
# What `make run` shows: rust_loop.ko serving plain losetup and mount -o loop.
set -x
grep -E '^ *7 loop$' /proc/devices
ls -l /dev/loop-control
modinfo /tests/ko/rust_loop.ko | grep -E '^(alias|description|license)'
truncate -s 64M /tmp/disk.img
losetup -f --show /tmp/disk.img || exit 0
losetup -l
mkfs.ext4 -q /dev/loop0 && mkdir -p /mnt/demo && mount /dev/loop0 /mnt/demo && echo hello >/mnt/demo/hello && umount /mnt/demo
losetup -d /dev/loop0
mount -o loop /tmp/disk.img /mnt/demo && cat /mnt/demo/hello && losetup -l && umount /mnt/demo
losetup -l
