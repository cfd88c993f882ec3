#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the guest's benchmark records into bench/latest.json, a table and a chart.

Usage: bench_report.py RESULTS OUTDIR ACCEL [--ktap]
With --ktap, also prints a KTAP stream: one test per (system, backing, workload)
that has a result or an explicit "not available" reason, plus one per memory
metric, so `make check` fails when a benchmark path rots.
"""
import json
import os
import platform
import statistics
import subprocess
import sys


def parse(path):
    recs, na, mem, cpu, done = [], [], [], {}, False
    lat, irq = {}, {}
    cur, buf = None, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if cur is not None:
                if line == "@@END":
                    try:
                        recs.append((cur, json.loads("\n".join(buf))))
                    except ValueError:
                        na.append((cur[0], cur[1], f"fio JSON unreadable for {cur[2]}"))
                    cur, buf = None, []
                else:
                    buf.append(line)
                continue
            if line.startswith("@@BEGIN "):
                cur = line.split()[1:5]
            elif line.startswith("@@NA "):
                p = line.split(" ", 3)
                na.append((p[1], p[2], p[3] if len(p) > 3 else ""))
            elif line.startswith("@@CPU "):
                p = line.split()
                cpu[tuple(p[1:5])] = [int(x) for x in p[5:9]]
            elif line.startswith("@@LAT "):
                p = line.split()
                lat[tuple(p[1:5])] = [int(x) for x in p[5:9]]
            elif line.startswith("@@IRQ "):
                p = line.split()
                irq[tuple(p[1:5])] = [int(x) for x in p[5:9]]
            elif line.startswith("@@MEM "):
                p = line.split()
                mem.append((p[1], p[2], float(p[3]), int(p[4]) if len(p) > 4 else 1))
            elif line.startswith("@@DONE"):
                done = True
    return recs, na, mem, cpu, lat, irq, done


# Probe metrics near zero for one driver (loop.ko's memory at load is its code,
# within the reading's noise): the report gives rust_loop - loop.ko per round, not
# a ratio.
DIFF_METRICS = {"load_kib"}


def metrics(job):
    out = {}
    ios = sum(job[d].get("total_ios", 0) for d in ("read", "write"))
    for d in ("read", "write"):
        r = job[d]
        if r["io_bytes"] == 0:
            continue
        pct = r.get("clat_ns", {}).get("percentile", {})
        out = {
            "iops": r["iops"],
            "bw_kib_s": r["bw"],
            "p50_us": pct.get("50.000000", 0) / 1000,
            "p99_us": pct.get("99.000000", 0) / 1000,
        }
    if out:
        out["ios"] = ios
    return out


USER_HZ = 100  # /proc/stat ticks per second


def per_io(m, c):
    """Context switches, interrupts and CPU microseconds per I/O over one fio run
    (the guest's /proc/stat around it), and the busy share of the guest's CPUs."""
    ctxt, intr, busy, total = c
    ios = m.get("ios", 0)
    if not ios or not total:
        return {}
    return {"ctxt_per_io": ctxt / ios, "intr_per_io": intr / ios,
            "cpu_us_per_io": busy * 1e6 / USER_HZ / ios, "cpu_busy": busy / total}


def waits(m, lat):
    """Where a request of the scale scenario waits (diskstats of the loop devices
    and of the backing null_blk): milliseconds per read at each, and requests in
    flight at the loop devices (Little's law)."""
    out = {}
    if lat:
        br, bms, dr, dms = lat
        if br and dr:
            out.update({"backing_ms": bms / br, "device_ms": dms / dr,
                        "in_flight": m.get("iops", 0) * dms / dr / 1000})
    return out


def irqs_per_io(m, irq):
    """Local timer interrupts, rescheduling IPIs, function-call IPIs and TLB
    shootdowns per I/O over one fio run (/proc/interrupts LOC, RES, CAL, TLB),
    for every cell: under TCG each interrupt takes the vCPU out of its
    translated code, so a difference here costs real time beyond its
    instructions."""
    if not irq or not m.get("ios"):
        return {}
    loc, res, cal, tlb = (irq + [0] * 4)[:4]
    ios = m["ios"]
    return {"timer_irq_per_io": loc / ios, "resched_ipi_per_io": res / ios,
            "call_ipi_per_io": cal / ios, "tlb_ipi_per_io": tlb / ios}


def main():
    results, outdir, accel = sys.argv[1], sys.argv[2], sys.argv[3]
    ktap = "--ktap" in sys.argv
    recs, na, mem, cpu, lat, irq, done = parse(results)
    rows = {}
    records = []
    for (system, backing, wl, rnd), js in recs:
        m = metrics(js["jobs"][0])
        c = cpu.get((system, backing, wl, rnd))
        if c:
            m.update(per_io(m, c))
        m.update(waits(m, lat.get((system, backing, wl, rnd))))
        m.update(irqs_per_io(m, irq.get((system, backing, wl, rnd))))
        for k, v in m.items():
            records.append({"system": system, "backing": backing, "workload": wl,
                            "round": int(rnd), "metric": k, "value": v})
        rows.setdefault((backing, wl, system), []).append(m)
    for system, metric, v, rnd in mem:
        records.append({"system": system, "backing": "-", "workload": "devices",
                        "round": rnd, "metric": metric, "value": v})
    # The device probe per system and metric over the rounds, and rust_loop /
    # loop.ko per round.
    mem_rounds = {}
    for system, metric, v, rnd in mem:
        mem_rounds.setdefault((system, metric), {})[rnd] = v
    mem_lines = []
    for (system, metric), vs in mem_rounds.items():
        xs = list(vs.values())
        mem_lines.append(f"memory/time {system:10} {metric:32} {statistics.median(xs):10.3f}"
                         f" [{min(xs):.3f}-{max(xs):.3f}]")
    for (system, metric), vs in mem_rounds.items():
        ref = mem_rounds.get(("loop.ko", metric), {})
        if metric in DIFF_METRICS:
            ds = [vs[r] - ref[r] for r in vs if system == "rust_loop" and r in ref]
            if ds:
                mem_lines.append(f"memory/time {'rust-loop':10} {metric:32} {statistics.median(ds):+10.0f}"
                                 f" [{min(ds):+.0f} to {max(ds):+.0f}]")
            continue
        rs = [vs[r] / ref[r] for r in vs if system == "rust_loop" and ref.get(r)]
        if rs:
            mem_lines.append(f"memory/time {'rust/loop':10} {metric:32} {statistics.median(rs):9.2f}x"
                             f" [{min(rs):.2f}-{max(rs):.2f}]")
    machine = {
        "cpus": os.cpu_count(), "host": platform.machine(), "accel": accel,
        "guest": "QEMU, 2 vCPUs, 2 GiB; null_blk memory-backed; tmpfs; ext4 on null_blk",
    }
    with open(os.path.join(outdir, "latest.json"), "w") as f:
        json.dump({"machine": machine, "unavailable": [
            {"system": s, "backing": b, "reason": r} for s, b, r in na],
            "records": records}, f, indent=1)

    def med(lst, k):
        return statistics.median(x[k] for x in lst) if lst else 0

    order = ["tmpfs", "ext4-dio", "nullb", "virtio", "nullb-5ms"]
    backings = sorted({k[0] for k in rows}, key=lambda b: order.index(b) if b in order else 9)
    base_wls = ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd1", "randwrite-4k-qd32",
                "read-1m-qd4", "write-1m-qd4", "randread-4k-qd32-j4"]
    scale_wls = sorted({k[1] for k in rows if "-x" in k[1]}, key=lambda w: int(w.rsplit("x", 1)[1]))
    wls = base_wls + scale_wls
    alt = any(k[2] == "rust_loop-alt" for k in rows)
    systems = ["rust_loop"] + (["rust_loop-alt"] if alt else []) + ["loop.ko", "dm-linear", "ublk", "raw"]

    def rounds_of(b, w, s, key):
        return {r["round"]: r["value"] for r in records
                if (r["backing"], r["workload"], r["system"], r["metric"]) == (b, w, s, key)}

    def spread(b, w, key, other, this="rust_loop"):
        """Median ratio this / other over the rounds, and its min and max."""
        a, o = rounds_of(b, w, this, key), rounds_of(b, w, other, key)
        rs = [a[k] / o[k] for k in a if k in o and o[k]]
        if not rs:
            return None
        return statistics.median(rs), min(rs), max(rs)

    lines = []
    hdr = (f"{'backing':9} {'workload':22} " + " ".join(f"{s:>10}" for s in systems)
           + f"  {'rust/loop.ko [min-max]':>24} {'rust/raw':>9}  {'p50 us rust/loop':>17} {'p99 us rust/loop':>17}"
           + (f"  {'alt/rust [min-max]':>20} {'alt/loop.ko':>11}" if alt else ""))
    lines.append(hdr)
    chart = []
    for b in backings:
        for w in wls:
            vals = {}
            key = "iops" if "4k" in w else "bw_kib_s"
            for s in systems:
                lst = rows.get((b, w, s), [])
                vals[s] = med(lst, key) if lst else None
            if all(v is None for v in vals.values()):
                continue

            def fmt(v):
                return f"{v:10.0f}" if v is not None else f"{'-':>10}"
            r1 = spread(b, w, key, "loop.ko")
            r2 = spread(b, w, key, "raw")
            c1 = f"{r1[0]:.2f} [{r1[1]:.2f}-{r1[2]:.2f}]" if r1 else "-"
            c2 = f"{r2[0]:.2f}" if r2 else "-"
            lat = []
            for m in ("p50_us", "p99_us"):
                ru = rows.get((b, w, "rust_loop"), [])
                lo = rows.get((b, w, "loop.ko"), [])
                lat.append(f"{med(ru, m):.0f}/{med(lo, m):.0f}" if ru and lo else "-")
            extra = ""
            if alt:
                r3 = spread(b, w, key, "rust_loop", "rust_loop-alt")
                r4 = spread(b, w, key, "loop.ko", "rust_loop-alt")
                c3 = f"{r3[0]:.2f} [{r3[1]:.2f}-{r3[2]:.2f}]" if r3 else "-"
                c4 = f"{r4[0]:.2f}" if r4 else "-"
                extra = f"  {c3:>20} {c4:>11}"
            lines.append(f"{b:9} {w:22} " + " ".join(fmt(vals[s]) for s in systems)
                         + f"  {c1:>24} {c2:>9}  {lat[0]:>17} {lat[1]:>17}" + extra)
            chart.append((f"{b}\n{w}", r1, r2))
    lines.append("(4k workloads: IOPS; 1m workloads: KiB/s; medians over rounds; ratios: median of the"
                 " per-round ratios [min-max]; -j4: 4 jobs on one device; nullb-5ms -xN: N busy devices)")
    # Where the time goes: per I/O, medians over the rounds.
    cost_sys = [s for s in systems if s not in ("ublk", "raw")]
    def block(key, title, head, width, cell, legend):
        """One cost block: a cell per system for each cell of the table that has
        `key` in some round (medians over the rounds)."""
        if not any(key in m for lst in rows.values() for m in lst):
            return
        lines.append("")
        lines.append(f"{title:32} " + " ".join(f"{s + ' ' + head:>{width}}" for s in cost_sys))
        for b in backings:
            for w in wls:
                cells = []
                for s in cost_sys:
                    lst = [m for m in rows.get((b, w, s), []) if key in m]
                    cells.append(cell(lambda k: med(lst, k)) if lst else "-")
                if any(c != "-" for c in cells):
                    lines.append(f"{b:9} {w:22} " + " ".join(f"{c:>{width}}" for c in cells))
        lines.append(legend)

    block("cpu_us_per_io", "per I/O (guest /proc/stat)", "ctxt/cpu_us/busy", 30,
          lambda m: f"{m('ctxt_per_io'):.2f}/{m('cpu_us_per_io'):.0f}/{m('cpu_busy') * 100:.0f}%",
          "(context switches per I/O / CPU microseconds per I/O / share of the guest's CPU busy)")
    block("device_ms", "where requests wait", "inflight/dev/back ms/tirq", 34,
          lambda m: f"{m('in_flight'):.0f}/{m('device_ms'):.1f}/{m('backing_ms'):.1f}/"
                    f"{m('timer_irq_per_io'):.2f}",
          "(requests in flight at the loop devices / ms per read there / ms per read at the"
          " backing null_blk / local timer interrupts per I/O; medians over rounds)")
    block("timer_irq_per_io", "interrupts per I/O", "timer/resched/call/tlb", 34,
          lambda m: f"{m('timer_irq_per_io'):.2f}/{m('resched_ipi_per_io'):.2f}/"
                    f"{m('call_ipi_per_io'):.2f}/{m('tlb_ipi_per_io'):.2f}",
          "(/proc/interrupts over the run, per I/O: local timer (LOC), rescheduling IPIs"
          " (RES), function-call IPIs (CAL), TLB shootdowns (TLB); medians over rounds)")
    lines.extend(mem_lines)
    if mem_lines:
        lines.append("(device probe: medians over rounds [min-max]; rust/loop: median of the per-round"
                     " ratios [min-max], lower is better; rust-loop: median of the per-round"
                     " differences; load_kib: memory taken by loading the module, no device)")
    for s, b, r in na:
        lines.append(f"not available: {s} on {b}: {r}")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(outdir, "latest.txt"), "w") as f:
        f.write(table + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(max(8, len(chart) * 0.6), 5))
        xs = range(len(chart))
        def bars(k, off, label):
            med_ = [c[k][0] if c[k] else 0 for c in chart]
            err = [[(c[k][0] - c[k][1]) if c[k] else 0 for c in chart],
                   [(c[k][2] - c[k][0]) if c[k] else 0 for c in chart]]
            ax.bar([x + off for x in xs], med_, 0.4, yerr=err, capsize=2, label=label)
        bars(1, -0.2, "rust_loop / loop.ko (median, min-max of rounds)")
        bars(2, 0.2, "rust_loop / raw device or file")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([c[0] for c in chart], rotation=90, fontsize=7)
        ax.set_ylabel("ratio (higher is better)")
        ax.set_title(f"rust_loop relative to loop.ko and the raw device or file ({accel.upper()} guest)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "latest.png"), dpi=100)
    except ImportError:
        print("(matplotlib missing: no chart)")
    if ktap:
        tests = []
        seen = {(s, b, w) for (b, w, s) in rows}
        for (s, b, w) in sorted(seen):
            tests.append((True, f"bench_{s}_{b}_{w}"))
        for s, b, r in na:
            # A peer that cannot run is reported with its reason; our own driver
            # and the reference must always run.
            ok = s not in ("rust_loop", "loop.ko")
            tests.append((ok, f"bench_{s}_{b}_available # {'SKIP ' if ok else ''}{r}"))
        for (system, metric), vs in mem_rounds.items():
            ok = all(v >= 0 for v in vs.values()) or "kib" in metric
            tests.append((ok, f"bench_mem_{system}_{metric}"))
        tests.append((done, "bench_guest_finished"))
        print("KTAP version 1")
        print("# suite: bench quick")
        for (system, metric), vs in mem_rounds.items():
            print(f"# {system}: {metric} = {statistics.median(vs.values()):.3f}")
        print(f"1..{len(tests)}")
        for i, (ok, name) in enumerate(tests, 1):
            print(f"{'ok' if ok else 'not ok'} {i} {name}")


if __name__ == "__main__":
    main()
