#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In-guest benchmark: every system on the same backing store, interleaved rounds
# (A B A B ...) so drift cancels, and each round starts with another system
# (A B C, B C A, ...) so no system always runs first or right after another. Emits records to stdout:
#   @@BEGIN system backing workload round  <fio JSON>  @@END
#   @@NA system backing reason
#   @@MEM system metric value round
#   @@CPU system backing workload round ctxt intr busy_ticks all_ticks  (the guest's
#         /proc/stat over that fio run: context switches, interrupts, CPU time)
#   @@LAT system backing workload round backing_reads backing_ms device_reads device_ms
#         (scale scenario: diskstats of the null_blk and of the loop devices)
#   @@IRQ system backing workload round LOC RES CAL TLB  (/proc/interrupts over the run)
# Usage: bench.sh QUICK(0|1)
quick=${1:-0}
KO=/tests/ko
LOOPCTL=/tests/bin/loopctl
# BENCH_ALT_KO on the host: a second build of rust_loop (another commit, a variant)
# runs as the system rust_loop-alt in the same boot, interleaved like the others.
ALT=
[ -f $KO/rust_loop_alt.ko ] && ALT=rust_loop-alt
if [ "$quick" = 1 ]; then
	RT=1 SIZE=16 ROUNDS=1 NDEV=1000 NATT=20 NCYC=100
else
	# Five rounds of 3 s, not three of 5 s: the host's speed drifts between runs
	# (the virtio cells swing 1.5x between rounds for every system, dm-linear and
	# the raw device included), so more rounds give a steadier median for the same
	# fio time (docs/benchmark.md, "Session 14").
	RT=${BENCH_RUNTIME:-3} SIZE=256 ROUNDS=${BENCH_ROUNDS:-5} NDEV=1000 NATT=100 NCYC=2000
fi
# Overrides from the kernel command line (BENCH_BACKINGS / BENCH_RUNTIME on the host).
cl_bb=$(sed -n 's/.*rl\.bb=\([a-z0-9,-]*\).*/\1/p' /proc/cmdline | tr , ' ')
cl_rt=$(sed -n 's/.*rl\.rt=\([0-9]*\).*/\1/p' /proc/cmdline)
cl_rounds=$(sed -n 's/.*rl\.rounds=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$cl_rt" ] && RT=$cl_rt
[ -n "$cl_rounds" ] && ROUNDS=$cl_rounds
WORKLOADS="randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32 read-1m-qd4 write-1m-qd4 randread-4k-qd32-j4"
cl_wl=$(sed -n 's/.*rl\.wl=\([a-z0-9,-]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ -n "$cl_wl" ] && WORKLOADS=$cl_wl
# The scale scenario: N busy devices on one slow block device (null_blk in timer
# mode, 5 ms completions: throughput needs queue depth, as on network or cloud
# disks), each at its own 64 MiB, one fio job per device at depth 32.
SCALE_NS=${BENCH_SCALE_NS:-"1 4 8 16 64"}
# Each busy device's own slice of the slow null_blk, in MiB and in sectors.
SLICE_MIB=64
SLICE_SECTORS=$((SLICE_MIB * 2048))
[ "$quick" = 1 ] && SCALE_NS="1 4"
cl_scale=$(sed -n 's/.*rl\.scale=\([0-9,]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ -n "$cl_scale" ] && SCALE_NS=$cl_scale
B=/bench
mkdir -p $B/tmp $B/ext4
mount -t tmpfs -o size=$((SIZE * 2 + 64))m tmpfs $B/tmp

log() { echo "# bench: $*" >&2; }

# rl.cgroup (BENCH_CGROUP=1 on the host): everything below, fio included, runs in
# a child cgroup, as I/O on a systemd host does (a slice, not the root cgroup), so
# both drivers' per-cgroup workers serve it.
if grep -q 'rl\.cgroup' /proc/cmdline; then
	mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
	echo "+io +memory" >/sys/fs/cgroup/cgroup.subtree_control
	mkdir -p /sys/fs/cgroup/rlbench
	echo $$ >/sys/fs/cgroup/rlbench/cgroup.procs
	log "in cgroup $(cat /proc/self/cgroup)"
fi

load_loop() { # system [params...]
	local sys=$1
	shift
	case $sys in
	rust_loop) insmod $KO/rust_loop.ko "$@" ;;
	rust_loop-alt) insmod $KO/rust_loop_alt.ko "$@" ;;
	loop.ko) insmod $KO/loop.ko "$@" ;;
	esac
}

# /proc/stat totals: context switches, interrupts, busy and all CPU ticks.
cpu_snap() {
	awk '$1 == "cpu" {b = $2 + $3 + $4 + $7 + $8; a = b + $5 + $6}
		$1 == "ctxt" {c = $2} $1 == "intr" {i = $2}
		END {print c, i, b, a}' /proc/stat
}
CPU0= IRQ0=
cpu_begin() { CPU0=$(cpu_snap); IRQ0=$(irq_snap); }

# Reads completed and milliseconds spent on them (diskstats), summed over the
# named block devices: where a request waits, on the backing device or above it.
disk_snap() {
	local d
	for d in "$@"; do cat "/sys/block/${d##*/}/stat"; done | awk '{r += $1; t += $4} END {print r + 0, t + 0}'
}
disk_begin() { DISK0="$(disk_snap rlslow) $(disk_snap "$@")"; }
# Local timer interrupts, rescheduling and function-call IPIs, TLB shootdowns
# (/proc/interrupts).
irq_snap() {
	awk '$1 == "LOC:" || $1 == "RES:" || $1 == "CAL:" || $1 == "TLB:" {s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; v[$1] = s}
		END {print v["LOC:"] + 0, v["RES:"] + 0, v["CAL:"] + 0, v["TLB:"] + 0}' /proc/interrupts
}
# rl.trace (BENCH_TRACE=1 on the host, a TRACE=1 kernel): the block layer's
# tracepoints over each scale run, summed per step of a read's way (mean us):
# at the loop device bio queued -> request allocated -> queue_rq -> completed; the
# hand-off from queue_rq to the backing request's allocation; at the backing
# null_blk allocated -> dispatched (a plug holds it) -> completed; and back from the
# null_blk's completion to the loop request's; for work items, from queueing to
# start and the share started on the CPU that queued them. Not part of make
# bench's numbers: tracing costs CPU.
# Records: @@TRACE system workload round step mean_us count
TR=/sys/kernel/tracing
trace_on() {
	grep -q 'rl\.trace' /proc/cmdline || return 0
	mountpoint -q $TR || mount -t tracefs nodev $TR 2>/dev/null || return 0
	echo 0 >$TR/tracing_on
	echo 65536 >$TR/buffer_size_kb
	local e
	for e in block/block_bio_queue block/block_getrq block/block_rq_issue block/block_rq_complete \
		workqueue/workqueue_queue_work workqueue/workqueue_execute_start; do
		echo 1 >$TR/events/$e/enable
	done
	: >$TR/trace
	echo 1 >$TR/tracing_on
}
trace_off() { # system workload round
	grep -q 'rl\.trace' /proc/cmdline && [ -w $TR/tracing_on ] || return 0
	echo 0 >$TR/tracing_on
	local back
	back=$(cut -d: -f1 /sys/block/rlslow/dev)
	awk -v back="$back" -v tag="$1 $2 $3" -v slice=$SLICE_SECTORS '
		function add(k, v) { if (v >= 0) { sum[k] += v; n[k]++ } }
		{
			for (i = 1; i <= NF && $i !~ /^(block|workqueue)_[a-z_]+:$/; i++);
			if (i > NF) next
			ev = $i; t = $(i - 1); sub(/:$/, "", t); t *= 1e6
			# Work items (of any driver): queued -> started, and on the CPU that
			# queued them or the other one.
			if (ev ~ /^workqueue_/) {
				for (c = 1; c < i && $c !~ /^\[[0-9]+\]$/; c++);
				if (ev == "workqueue_queue_work:") {
					w = $(i + 2); sub(/^struct=/, "", w); wq[w] = t; wc[w] = $c
				} else {
					w = $(i + 3); sub(/:$/, "", w)
					if (w in wq) {
						add("work_queued_to_started", t - wq[w])
						add("work_started_on_queueing_cpu", $c == wc[w])
						delete wq[w]
					}
				}
				next
			}
			for (j = i + 2; j <= NF && $j != "+"; j++);
			if (j > NF) next
			# o: the sector within the slice of its device (scale_setup), which pairs a
			# loop request with its backing request.
			split($(i + 1), d, ","); s = $(j - 1); k = $(i + 1) " " s; o = s % slice
			if (d[1] != back) {
				if (ev == "block_bio_queue:") q[k] = t
				else if (ev == "block_getrq:") { if (k in q) add("dev_queued_to_alloc", t - q[k]); g[k] = t }
				else if (ev == "block_rq_issue:") { if (k in g) add("dev_alloc_to_queue_rq", t - g[k]); is[k] = t; xi[o] = t }
				else if (ev == "block_rq_complete:") {
					if (k in is) add("dev_queue_rq_to_done", t - is[k])
					if (k in q) add("dev_queued_to_done", t - q[k])
					if (o in bc) add("back_done_to_dev_done", t - bc[o])
					delete q[k]; delete g[k]; delete is[k]; delete xi[o]; delete bc[o]
				}
			} else {
				if (ev == "block_getrq:") { if (o in xi) add("handoff_queue_rq_to_back_alloc", t - xi[o]); bg[k] = t }
				else if (ev == "block_rq_issue:") { if (k in bg) add("back_alloc_to_dispatch", t - bg[k]); bi[k] = t }
				else if (ev == "block_rq_complete:") {
					if (k in bi) add("back_dispatch_to_done", t - bi[k])
					if (k in bg) add("back_alloc_to_done", t - bg[k])
					bc[o] = t; delete bg[k]; delete bi[k]
				}
			}
		}
		END { for (k in sum) printf "@@TRACE %s %s %.1f %d\n", tag, k, sum[k] / n[k], n[k] }' $TR/trace | sort
	: >$TR/trace
}
disk_end() { # system workload round devices...: @@LAT backing reads ms, devices reads ms
	local sys=$1 wl=$2 round=$3 r0 t0 r1 t1 R0 T0 R1 T1
	shift 3
	read -r r0 t0 R0 T0 <<<"$DISK0"
	read -r r1 t1 R1 T1 <<<"$(disk_snap rlslow) $(disk_snap "$@")"
	echo "@@LAT $sys nullb-5ms $wl $round $((r1 - r0)) $((t1 - t0)) $((R1 - R0)) $((T1 - T0))"
}
cpu_end() { # system backing workload round
	local c0 i0 b0 a0 c1 i1 b1 a1
	read -r c0 i0 b0 a0 <<<"$CPU0"
	read -r c1 i1 b1 a1 <<<"$(cpu_snap)"
	echo "@@CPU $1 $2 $3 $4 $((c1 - c0)) $((i1 - i0)) $((b1 - b0)) $((a1 - a0))"
	local l0 r0 f0 t0 l1 r1 f1 t1
	read -r l0 r0 f0 t0 <<<"$IRQ0"
	read -r l1 r1 f1 t1 <<<"$(irq_snap)"
	echo "@@IRQ $1 $2 $3 $4 $((l1 - l0)) $((r1 - r0)) $((f1 - f0)) $((t1 - t0))"
}

unload_loops() {
	rmmod rust_loop 2>/dev/null
	rmmod loop 2>/dev/null
	true
}

# Backing stores.
insmod $KO/null_blk.ko nr_devices=2 gb=1 memory_backed=1 bs=4096 hw_queue_depth=64 || log "null_blk failed"
insmod $KO/dm-mod.ko 2>/dev/null || log "dm-mod failed"
insmod $KO/ublk_drv.ko 2>/dev/null || log "ublk_drv failed"
mkfs.ext4 -q -F /dev/nullb0 && mount /dev/nullb0 $B/ext4
for f in $B/tmp/file.img $B/ext4/file.img; do
	dd if=/dev/urandom of=$f bs=1M count=$SIZE status=none
done
sync
dd if=/dev/urandom of=/dev/nullb1 bs=1M count=$SIZE oflag=direct status=none
[ -b /dev/vda ] && dd if=/dev/urandom of=/dev/vda bs=1M count=$SIZE oflag=direct status=none

backings="tmpfs ext4-dio nullb"
[ -b /dev/vda ] && backings="$backings virtio"
[ -n "$cl_bb" ] && backings=$cl_bb
backing_path() {
	case $1 in
	tmpfs) echo $B/tmp/file.img ;;
	ext4-dio) echo $B/ext4/file.img ;;
	nullb) echo /dev/nullb1 ;;
	virtio) echo /dev/vda ;;
	esac
}
systems_for() {
	case $1 in
	# raw: fio on the backing file itself, the limit no loop driver can beat.
	tmpfs | ext4-dio) echo "raw rust_loop $ALT loop.ko ublk" ;;
	*) echo "raw dm-linear rust_loop $ALT loop.ko ublk" ;;
	esac
}

# rotate K WORDS...: the words, starting with the (K mod count)-th.
rotate() {
	local k=$1
	shift
	k=$((k % $#))
	echo "${@:k+1}" "${@:1:k}"
}

DEV=
setup() { # system backing -> sets DEV, or prints @@NA and fails
	local sys=$1 bk=$2 path dio=off
	path=$(backing_path "$bk")
	[ "$bk" = ext4-dio ] && dio=on
	# Block-device backings: direct I/O as loop users would set it up.
	case $bk in nullb | virtio) dio=on ;; esac
	case $sys in
	raw) DEV=$path ;;
	dm-linear)
		dmsetup create rlbench --table "0 $(blockdev --getsz "$path") linear $path 0" 2>/dev/null ||
			{ echo "@@NA $sys $bk dmsetup failed"; return 1; }
		DEV=/dev/mapper/rlbench
		[ -b $DEV ] || DEV=/dev/dm-0
		;;
	rust_loop | rust_loop-alt | loop.ko)
		unload_loops
		load_loop $sys
		DEV=$(losetup -f --show --direct-io=$dio "$path") || { echo "@@NA $sys $bk losetup failed"; return 1; }
		;;
	ublk)
		command -v rublk >/dev/null || { echo "@@NA $sys $bk rublk not built (cargo install rublk failed on the host)"; return 1; }
		[ -c /dev/ublk-control ] || { echo "@@NA $sys $bk no /dev/ublk-control"; return 1; }
		rublk add loop -f "$path" >/tmp/rublk.out 2>&1 || { echo "@@NA $sys $bk rublk add failed: $(head -c 200 /tmp/rublk.out | tr '\n' ' ')"; return 1; }
		sleep 1
		DEV=$(ls /dev/ublkb* 2>/dev/null | head -1)
		[ -b "$DEV" ] || { echo "@@NA $sys $bk no ublk block device"; return 1; }
		;;
	esac
}
teardown() { # system
	case $1 in
	dm-linear) dmsetup remove rlbench 2>/dev/null ;;
	rust_loop | rust_loop-alt | loop.ko) losetup -D; unload_loops ;;
	ublk) rublk del -a >/dev/null 2>&1 ;;
	esac
	true
}

fio_run() { # dev workload
	local rw bs qd jobs amount
	IFS=- read -r rw bs qd jobs <<<"$2"
	jobs=${jobs#j}
	# Quick mode moves a fixed small amount (every path, in seconds); the real
	# run is time based.
	if [ "$quick" = 1 ]; then
		amount=(--io_size=4m)
	else
		amount=(--runtime="$RT" --time_based)
	fi
	fio --name=bench --filename="$1" --direct=1 --ioengine=libaio --rw="$rw" --bs="$bs" \
		--iodepth="${qd#qd}" --size=${SIZE}m "${amount[@]}" --ramp_time=0 \
		--numjobs="${jobs:-1}" --group_reporting \
		--norandommap --randrepeat=0 --output-format=json --output=/tmp/fio.json >/dev/null 2>&1
}

# --- The scale scenario -----------------------------------------------------
SLOW=/sys/kernel/config/nullb/rlslow
slow_up() {
	[ -d /sys/kernel/config/nullb ] || return 1
	mkdir -p $SLOW
	echo 2 >$SLOW/irqmode
	echo 5000000 >$SLOW/completion_nsec
	echo 4096 >$SLOW/hw_queue_depth
	echo 0 >$SLOW/memory_backed
	echo 4096 >$SLOW/blocksize
	echo $((SLICE_MIB * 64 + 64)) >$SLOW/size
	echo 1 >$SLOW/power
	[ -b /dev/rlslow ]
}
SDEVS=
scale_setup() { # system N -> SDEVS, or prints @@NA and fails
	local sys=$1 n=$2 i d
	SDEVS=
	case $sys in
	rust_loop | rust_loop-alt | loop.ko)
		unload_loops
		load_loop $sys
		for i in $(seq 0 $((n - 1))); do
			d=$(losetup -f --show --direct-io=on -o $((i * SLICE_MIB))M --sizelimit ${SLICE_MIB}M /dev/rlslow) ||
				{ echo "@@NA $sys nullb-5ms losetup failed at device $i"; return 1; }
			SDEVS="$SDEVS $d"
		done
		;;
	dm-linear)
		for i in $(seq 0 $((n - 1))); do
			dmsetup create rlscale$i --table "0 $SLICE_SECTORS linear /dev/rlslow $((i * SLICE_SECTORS))" ||
				{ echo "@@NA $sys nullb-5ms dmsetup failed"; return 1; }
			# No udev in the guest: the node is /dev/dm-N (devtmpfs), not /dev/mapper.
			d=/dev/$(dmsetup info -c --noheadings -o blkdevname rlscale$i | tr -d ' ')
			[ -b "$d" ] || { echo "@@NA $sys nullb-5ms no node for rlscale$i"; return 1; }
			SDEVS="$SDEVS $d"
		done
		;;
	esac
}
scale_teardown() {
	local i
	case $1 in
	dm-linear) for i in $(seq 0 $(($2 - 1))); do dmsetup remove rlscale$i 2>/dev/null; done ;;
	*) losetup -D; unload_loops ;;
	esac
	true
}
scale_run() { # devices...: one job per device, aggregate result
	local args=() d amount
	if [ "$quick" = 1 ]; then amount=(--io_size=1m); else amount=(--runtime="$RT" --time_based); fi
	for d in "$@"; do args+=(--name="${d##*/}" --filename="$d"); done
	# --disk_util=0: fio's disk statistics stat sysfs links of every device every
	# 250 ms; with 64 devices that was a sixth of the guest's CPU time (perf),
	# the same for every system, and no part of what is measured.
	fio --direct=1 --ioengine=libaio --rw=randread --bs=4k --iodepth=32 --size=64m --disk_util=0 \
		"${amount[@]}" --norandommap --randrepeat=0 --group_reporting \
		--output-format=json --output=/tmp/fio.json "${args[@]}" >/dev/null 2>&1
}

for round in $(seq 1 $ROUNDS); do
	for bk in $backings; do
		[ -n "$(backing_path "$bk")" ] || continue
		# shellcheck disable=SC2046
		for sys in $(rotate $((round - 1)) $(systems_for $bk)); do
			if setup $sys $bk; then
				for wl in $WORKLOADS; do
					cpu_begin
					if fio_run "$DEV" $wl; then
						cpu_end $sys $bk $wl $round
						echo "@@BEGIN $sys $bk $wl $round"
						cat /tmp/fio.json
						echo "@@END"
					else
						echo "@@NA $sys $bk fio $wl failed"
					fi
				done
			fi
			teardown $sys
		done
	done
done

if grep -q 'rl\.noscale' /proc/cmdline; then
	: # BENCH_SCALE=0: no scale scenario asked for
elif slow_up; then
	for round in $(seq 1 $ROUNDS); do
		for n in $SCALE_NS; do
			# shellcheck disable=SC2086
			for sys in $(rotate $((round - 1)) rust_loop $ALT loop.ko dm-linear); do
				if scale_setup $sys $n; then
					cpu_begin
					# shellcheck disable=SC2086
					disk_begin $SDEVS
					trace_on
					# shellcheck disable=SC2086
					if scale_run $SDEVS; then
						cpu_end $sys nullb-5ms randread-4k-qd32-x$n $round
						trace_off $sys randread-4k-qd32-x$n $round
						# shellcheck disable=SC2086
						disk_end $sys randread-4k-qd32-x$n $round $SDEVS
						echo "@@BEGIN $sys nullb-5ms randread-4k-qd32-x$n $round"
						cat /tmp/fio.json
						echo "@@END"
					else
						echo "@@NA $sys nullb-5ms fio with $n devices failed"
					fi
				fi
				scale_teardown $sys $n
			done
		done
	done
	echo 0 >$SLOW/power
	rmdir $SLOW
else
	echo "@@NA rust_loop nullb-5ms no null_blk configfs"
fi

# Memory and attach/detach time, per loop driver (BENCH_MEM=0: skipped).
if grep -q 'rl\.nomem' /proc/cmdline; then
	echo "@@DONE"
	exit 0
fi
now_us() { echo "${EPOCHREALTIME/./}"; }
meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
# Pages on the per-CPU free lists are free but not in MemFree: with 2 vCPUs they
# swing by megabytes between readings (the noise of the earlier probe), so they
# are counted as free here (/proc/zoneinfo's pageset counts).
pcp_kib() { awk '$1 == "count:" {s += $2} END {print s * 4}' /proc/zoneinfo; }
used_kib() { echo $(($(meminfo MemTotal) - $(meminfo MemFree) - $(pcp_kib) - $(meminfo Cached) - $(meminfo Buffers))); }
# Rounds like the fio cells, each starting with another system: the same module
# measured twice in one boot differed by up to 1.4x (docs/benchmark.md).
for r in $(seq 1 "$ROUNDS"); do
	for sys in $(rotate $((r - 1)) rust_loop $ALT loop.ko); do
		unload_loops
		sync; echo 3 >/proc/sys/vm/drop_caches
		ul=$(used_kib)
		load_loop $sys max_loop=0
		sync; echo 3 >/proc/sys/vm/drop_caches
		u0=$(used_kib) s0=$(meminfo Slab)
		# What the module costs with no device: its code and data, and what it
		# allocates at load (rust_loop's shared tag set and its requests).
		echo "@@MEM $sys load_kib $((u0 - ul)) $r"
		t0=$(now_us)
		for i in $(seq 0 $((NDEV - 1))); do $LOOPCTL ctl-add $i >/dev/null; done
		t1=$(now_us)
		sync; echo 3 >/proc/sys/vm/drop_caches
		u1=$(used_kib) s1=$(meminfo Slab)
		echo "@@MEM $sys unattached_kib_per_device $(((u1 - u0) * 1000 / NDEV))e-3 $r"
		echo "@@MEM $sys unattached_slab_kib_per_device $(((s1 - s0) * 1000 / NDEV))e-3 $r"
		echo "@@MEM $sys add_ms_per_device $(((t1 - t0) / NDEV))e-3 $r"
		truncate -s 1M $B/tmp/small.img
		t0=$(now_us)
		for i in $(seq 0 $((NATT - 1))); do $LOOPCTL set-fd /dev/loop$i $B/tmp/small.img >/dev/null; done
		t1=$(now_us)
		sync
		u2=$(used_kib)
		echo "@@MEM $sys attached_kib_per_device $(((u2 - u1) * 1000 / NATT))e-3 $r"
		echo "@@MEM $sys attach_ms_per_device $(((t1 - t0) / NATT))e-3 $r"
		t0=$(now_us)
		for i in $(seq 0 $((NATT - 1))); do $LOOPCTL clr-fd /dev/loop$i >/dev/null; done
		t1=$(now_us)
		echo "@@MEM $sys detach_ms_per_device $(((t1 - t0) / NATT))e-3 $r"
		# The same in one process, timed around the calls: the driver's share. Each
		# loopctl above is a program start (about 3 ms of this guest's time) for an
		# attach or detach of tens of microseconds.
		c=$($LOOPCTL cycle /dev/loop0 $B/tmp/small.img $NCYC)
		case $c in
		"OK attach_us="*)
			c=${c#OK attach_us=}
			echo "@@MEM $sys attach_us_one_process ${c% detach_us=*} $r"
			echo "@@MEM $sys detach_us_one_process ${c#* detach_us=} $r"
			;;
		*) log "loopctl cycle on $sys: $c" ;;
		esac
		t0=$(now_us)
		for i in $(seq 0 $((NDEV - 1))); do $LOOPCTL ctl-remove $i >/dev/null; done
		t1=$(now_us)
		echo "@@MEM $sys remove_ms_per_device $(((t1 - t0) / NDEV))e-3 $r"
		unload_loops
	done
done
echo "@@DONE"
