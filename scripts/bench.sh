#!/usr/bin/env bash
# `make bench`: one guest boot, every system on every backing, interleaved rounds.
# Writes bench/latest.json, bench/latest.png and prints the table.
# QUICK=1: tiny sizes, one round, output under .out/bench-quick (part of make check;
# its KTAP lines go to stdout when KTAP=1).
set -euo pipefail
. "$(dirname "$0")/env.sh"
# BENCH_OUT: where the table, JSON and chart go (an experiment that should not
# replace the published bench/latest.*).
if [ -n "${BENCH_OUT:-}" ]; then
	out=$BENCH_OUT
elif [ "${QUICK:-0}" = 1 ]; then
	out=$RL_ROOT/.out/bench-quick
else
	out=$RL_ROOT/bench
fi
mkdir -p "$out"
raw=$RL_ROOT/.out/bench-raw$([ "${QUICK:-0}" = 1 ] && echo -quick || true)
rm -rf "$raw"
mkdir -p "$raw"
# The virtio disk's image on the host's tmpfs: on the host's own disk its pages,
# written back by the host at times of its choosing, slowed whichever cell ran
# then (docs/benchmark.md, "Session 14"). VDISK= keeps another place.
vdisk_tmp=
if [ -z "${VDISK:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	vdisk_tmp=$(mktemp /dev/shm/rust_loop-vdisk.XXXXXX)
	trap 'rm -f "$vdisk_tmp"' EXIT
	truncate -s 512M "$vdisk_tmp"
	export VDISK=$vdisk_tmp
fi
QUICK=${QUICK:-0} GUEST_TIMEOUT=${GUEST_TIMEOUT:-$([ "${QUICK:-0}" = 1 ] && echo 900 || echo 5000)} \
	"$RL_ROOT/scripts/guest.sh" bench "$raw" || true
accel=${ACCEL:-tcg}
python3 "$RL_ROOT/scripts/bench_report.py" "$raw/results.ktap" "$out" "$accel" ${KTAP:+--ktap}
