// SPDX-License-Identifier: GPL-2.0

//! The data path for file backing: each request's bvecs are handed once to the
//! backing file's `read_iter`/`write_iter` (an `iov_iter` over the request's own
//! pages, no bounce copy).
//!
//! `queue_rq` first tries a buffered read with `IOCB_NOWAIT`: a page cache hit
//! completes right there, with no hand-off (so does a write to tmpfs, a copy
//! into memory). Everything that may block (a miss, writes to other files,
//! flush, discard, direct I/O) goes to a worker of the device, one work item
//! (one per cgroup, worker.rs), which runs with `PF_MEMALLOC_NOIO` and
//! `PF_LOCAL_THROTTLE`. A read that
//! the fast path finished in part continues in the worker where it stopped, so no
//! byte is transferred twice.

use crate::device::{complete, Binding, LoopDevice, Pending};
use crate::kapi::aio::AioDone;
use crate::kapi::bio::BioSet;
use crate::kapi::blk::{
    as_io_worker, cpu_contended, feat, noio, plugged, with_plug, Dir, Op, Request,
};
use crate::kapi::cgroup::{in_kernel_thread, Charge};
use crate::kapi::errno::eopnotsupp;
use crate::kapi::file::{falloc, iocb, BackingFile};
use crate::worker::Worker;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{prelude::*, sync::Arc, time::Delta, workqueue::WorkItem};

impl WorkItem for Worker {
    type Pointer = Arc<Worker>;

    fn run(this: Arc<Worker>) {
        as_io_worker(|| {
            this.drain(|batch| {
                // Every request of a batch is in flight, and a binding is replaced
                // only while none is (the queue frozen, or no opener left): one
                // lookup serves the whole batch.
                let b = batch.first().and_then(|p| p.rq.data().binding());
                // One plug per batch: the backing device gets the batch's clones
                // and direct I/O bios together (one doorbell), not one by one.
                with_plug(|| {
                    for p in batch.drain_all() {
                        handle(p, b.as_deref());
                    }
                });
            })
        })
    }
}

/// One request in this many that could be done inline is handed off instead.
const PROBE_EVERY: u32 = 64;

/// Requests after one that found others in flight that go to the worker even if
/// they find the queue empty (see `queue_rq`). Short: a deep submitter renews it
/// with every request that finds another in flight, while a depth-1 reader that
/// follows a burst (the partition scan's reads at attach find each other in flight)
/// gives only this many to the worker. 64 cost such a reader a quarter of its first
/// 256 requests; 16 kept a depth-32 submitter on the worker as well as 64 did
/// (test `a_deep_submitter_keeps_the_worker`, docs/benchmark.md).
const PIPELINE: u32 = 16;

/// Reads of at least this many bytes are copied by their submitter while the
/// worker is busy with another request (see `queue_rq`).
const SHARE_BYTES: u32 = 64 * 1024;

/// blk-mq's `queue_rq`: what can finish without a hand-off does.
///
/// When the request is alone in flight (queue depth 1, where the hand-off would be
/// most of the cost):
/// - direct I/O is submitted asynchronously right here with `IOCB_NOWAIT` and
///   completes in `aio_done`; a filesystem that would block gets it resubmitted,
///   blocking, by the worker;
/// - a buffered read is tried here (`IOCB_NOWAIT`, or plain on tmpfs);
/// - a write to tmpfs (a copy into memory) is done here when no page of its
///   range is swapped out and no swap slot is free.
///
/// With others in flight, a read of 64 KiB or more that the fast path can serve
/// is copied here if the worker is busy with another request, so two CPUs copy.
///
/// Everything else goes to the worker, which submits direct I/O asynchronously
/// too, so many requests are in flight at higher queue depths.
pub(crate) fn queue_rq(dev: &LoopDevice, rq: Request<LoopDevice>, last: bool) {
    // Alone in flight and the last of its batch: nothing to overlap with, so the
    // hand-off would be pure cost. Otherwise the worker takes it and the
    // submitter's CPU and the worker's run in parallel.
    //
    // Inline completion keeps the queue empty, which would hide a submitter that
    // wants depth; so one request in `PROBE_EVERY` that finds itself alone is still
    // handed off. If the submitter has more to send, it finds that one in flight.
    //
    // Once a request finds others in flight, the next `PIPELINE` requests go to
    // the worker even when the worker has just drained the queue, so the
    // submitter's CPU and the worker's overlap. Without this a fast worker empties
    // the queue before the submitter refills it, every request then looks alone,
    // and the whole I/O runs serially in the submitter's context (one CPU: the
    // benchmark's busy share at depth 32 was 49-58% on 2 vCPUs against loop.ko's
    // 77-80%). A submitter at depth 1 waits for each request, so no request of its
    // finds another in flight and it stays inline.
    let alone = if dev.start_request() > 0 {
        dev.pipeline.store(PIPELINE, Ordering::Relaxed);
        false
    } else {
        last && !pipelining(dev)
            && dev.streak.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY != PROBE_EVERY - 1
    };
    // Under a plug (a plug flush) no bio is submitted from here: it would join the
    // plug being flushed. Page-cache reads submit none, so they may still run.
    let unplugged = !plugged();
    let submit_inline = alone && unplugged;
    let Some(b) = dev.binding() else {
        complete(rq, Err(EIO));
        return;
    };
    let op = rq.op();
    let route = route(&b, op);
    match route {
        Route::ReadOnly => {
            complete(rq, Err(EIO));
            return;
        }
        Route::Remap(pool) if submit_inline || (unplugged && latency_bound(dev, &b)) => {
            dev.stats.inline.fetch_add(1, Ordering::Relaxed);
            crate::bio_remap::submit(rq, pool, &b.file, b.offset);
            return;
        }
        // Direct I/O issued here is charged to the submitter's cgroups only when
        // the submitter is the caller; a queue run by a kworker hands it to the
        // worker, which charges it (see `kapi::cgroup`).
        Route::DirectIo(dir) if submit_inline && b.inline_dio && !in_kernel_thread() => {
            let pos = rq.pos() + b.offset;
            rq.submit_dio(&b.file, pos, dir, 0, true);
            return;
        }
        _ => {}
    }
    let mut done = 0;
    // A large read while the worker is busy with another request: the submitter
    // copies this one itself, so two CPUs copy. A hand-off costs more than a
    // 4 KiB copy but much less than a 64 KiB one. Reads only: two writers to one
    // file take turns on its inode lock, and the one that waits burns CPU
    // spinning on it (tmpfs 1 MiB writes at depth 4 were 1.23x slower shared,
    // reads 1.39x faster; docs/benchmark.md, session 13).
    //
    // A read of any size is copied here too when the device has several
    // submitters and most recent submissions found their CPU contended: the
    // CPUs, not the worker's queue, are what the device waits for, and a copy
    // here costs less CPU than the hand-off (four submitters on one tmpfs-backed
    // device, docs/benchmark.md, session 24). One deep submitter keeps the
    // worker: its CPU is often contended by the worker itself, and the two CPUs
    // overlap only through the hand-off.
    let share = !alone
        && op == Op::Read
        && b.inline_read.is_some()
        && matches!(route, Route::File)
        && ((rq.len() >= SHARE_BYTES && !b.worker.idle())
            || (dev.note_submitter(current!().pid()) && dev.note_contention(cpu_contended())));
    // A blocking read here would be a deadlock if it waited for I/O: bios submitted
    // from ->queue_rq only go out after it returns. So inline reads are either
    // IOCB_NOWAIT or from shmem pages that are all in memory.
    let inline_read = match (
        route,
        op,
        b.inline_read,
        (alone && b.worker.idle()) || share,
    ) {
        (Route::File, Op::Read, Some(flags), true)
            if flags != 0
                || b.file
                    .shmem_resident(rq.pos() + b.offset, rq.len() as usize) =>
        {
            Some(flags)
        }
        _ => None,
    };
    // A write to tmpfs is a copy into memory: done here under the rule of the
    // tmpfs read (no page of the range swapped out, no free swap slot, so neither
    // a swap-in nor a swap-out can be waited for), with NOIO allocations. The pages
    // it fills are charged to the caller's memcg, so a kworker (writeback) hands
    // the write to the worker, which charges the request's cgroup.
    if matches!((route, op), (Route::File, Op::Write))
        && b.inline_write
        && alone
        && b.worker.idle()
        && !in_kernel_thread()
        && b.file
            .shmem_resident(rq.pos() + b.offset, rq.len() as usize)
    {
        let res = noio(|| write_all(dev, &b, &rq)).map_err(io_error);
        dev.stats.inline.fetch_add(1, Ordering::Relaxed);
        complete(rq, res);
        return;
    }
    if let Some(flags) = inline_read {
        match noio(|| read_from(dev, &b, &rq, 0, flags)) {
            Ok(n) if n == rq.len() as usize => {
                dev.stats.inline.fetch_add(1, Ordering::Relaxed);
                complete(rq, Ok(()));
                return;
            }
            Ok(n) => done = n,
            Err(_) => {}
        }
    }
    b.worker.push(Pending { rq, done });
}

/// A backing device this slow makes a remapping device wait for it, not for CPU.
const SLOW_BACKING: Delta = Delta::from_millis(1);

/// Whether a remapped request is submitted here though others are in flight:
/// when the device waits for a slow backing device (a disk, a network or cloud
/// volume), the worker has nothing queued, and the backing device's driver has
/// no doorbell that a batch of clones would ring once (see
/// `Binding::remap_unbatched`).
///
/// The worker pays at depth when the backing device is fast: the submitter is
/// then bound by CPU, and the worker remaps on a second one (null_blk at depth
/// 32: 1.42x faster with the worker than remapping here, docs/benchmark.md,
/// session 20). When requests wait a millisecond or more at the backing device,
/// the device is bound by that wait: a remap is a few microseconds of the
/// submitter's CPU, while the hand-off adds a wake-up of the worker to every
/// request's time. A worker with requests queued keeps taking them, in order.
///
/// When most recent submissions found another task runnable on their CPU, the
/// CPUs are what the device waits for, not the backing device, and the worker's
/// batches cost less CPU per request than remapping in every submitter (many
/// busy devices on 2 vCPUs, 5 ms null_blk, docs/benchmark.md, session 23: with
/// this condition 1.29x the rule without it at 64 busy devices, 1.18x at 16,
/// 1.02x at one). Most, not this one: a device whose CPUs are busy part of the
/// time would otherwise alternate between the two ways (session 24).
fn latency_bound(dev: &LoopDevice, b: &Binding) -> bool {
    b.remap_unbatched
        && dev.backing_slower_than(SLOW_BACKING)
        && !dev.note_contention(cpu_contended())
        && b.worker.idle()
}

/// Whether a request that finds the queue empty still goes to the worker, as one
/// of the `PIPELINE` after a request that found others in flight.
fn pipelining(dev: &LoopDevice) -> bool {
    dev.pipeline
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

impl AioDone for LoopDevice {
    fn aio_done(rq: Request<LoopDevice>, base: usize, res: Result<usize>) {
        let len = rq.len() as usize;
        let dev = rq.data();
        match res {
            Ok(n) if base + n >= len => {
                dev.stats.add(0, n);
                complete(rq, Ok(()));
            }
            Ok(0) => {
                // No progress: past the end of the file (read) or a full
                // filesystem (write).
                if rq.op() == Op::Read {
                    rq.zero_fill();
                    complete(rq, Err(EIO));
                } else {
                    complete(rq, Err(ENOSPC));
                }
            }
            Ok(n) => {
                dev.stats.add(0, n);
                hand_off(rq, base + n);
            }
            Err(e) if e == EAGAIN => hand_off(rq, base),
            Err(e) => complete(rq, Err(io_error(e))),
        }
    }
}

/// Gives a request to its device's worker (any context, so only the worker is
/// referenced: the binding's last reference must not be dropped here).
fn hand_off(rq: Request<LoopDevice>, done: usize) {
    match rq.data().worker() {
        Some(w) => w.push(Pending { rq, done }),
        None => complete(rq, Err(EIO)),
    }
}

/// Reads into the request's pages from `done` bytes on; returns the new total.
/// Stops early (short) at end of file or when `IOCB_NOWAIT` would block.
fn read_from(
    dev: &LoopDevice,
    b: &Binding,
    rq: &Request<LoopDevice>,
    mut done: usize,
    flags: u32,
) -> Result<usize> {
    let len = rq.len() as usize;
    let mut it = rq.data_iter(Dir::Dest)?;
    it.advance(done);
    let segs = it.segments();
    while done < len {
        match b
            .file
            .read(&mut it, rq.pos() + b.offset + done as u64, flags)
        {
            Ok(0) => break,
            Ok(n) => {
                dev.stats.add(0, n);
                done += n;
            }
            Err(e) if done > 0 && e == EAGAIN => break,
            Err(e) => return Err(e),
        }
    }
    if done == len {
        dev.stats.add(segs, 0);
    }
    Ok(done)
}

fn write_all(dev: &LoopDevice, b: &Binding, rq: &Request<LoopDevice>) -> Result {
    let len = rq.len() as usize;
    let mut it = rq.data_iter(Dir::Source)?;
    let segs = it.segments();
    let flags = if b.dio { iocb::DIRECT } else { 0 };
    let mut done = 0;
    while done < len {
        match b
            .file
            .write(&mut it, rq.pos() + b.offset + done as u64, flags)?
        {
            // A filesystem that takes nothing more is full: report it instead of
            // completing a short write as success (loop.ko loses the tail here).
            0 => return Err(ENOSPC),
            n => {
                dev.stats.add(0, n);
                done += n;
            }
        }
    }
    dev.stats.add(segs, 0);
    Ok(())
}

/// Carries out a request handed to the worker, with the device's binding `b`.
fn handle(p: Pending, b: Option<&Binding>) {
    let rq = p.rq;
    let dev = rq.data();
    let Some(b) = b else {
        complete(rq, Err(EIO));
        return;
    };
    match route(b, rq.op()) {
        Route::ReadOnly => complete(rq, Err(EIO)),
        // At depth the worker remaps, so the submitter's CPU and this one share
        // the work. No charge needed: each clone carries its original's blkcg
        // (`bio_alloc_clone`), and a clone allocates no page cache.
        Route::Remap(pool) => crate::bio_remap::submit(rq, pool, &b.file, b.offset),
        // The rest of a direct I/O request, now allowed to block in submission.
        // Here and below the submitter's cgroups pay for the I/O and the page cache
        // it causes (io.max, memory.max), as with loop.ko.
        Route::DirectIo(dir) => {
            let _charge = Charge::enter(&rq);
            let pos = rq.pos() + b.offset;
            rq.submit_dio(&b.file, pos, dir, p.done, false);
        }
        Route::File => {
            let _charge = Charge::enter(&rq);
            let res = do_request(dev, b, &rq, p.done);
            complete(rq, res);
        }
    }
}

/// How a request is carried out: decided here once, for `->queue_rq` (which may
/// do it inline) and for the worker.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// Anything but a read on a read-only binding: EIO (loop.ko's rule).
    ReadOnly,
    /// Cloned onto the backing block device (`bio_remap.rs`).
    Remap(&'a BioSet),
    /// Asynchronous direct I/O to the backing file.
    DirectIo(Dir),
    /// The backing file's `read_iter`/`write_iter`, `fsync` or `fallocate`.
    File,
}

fn route(b: &Binding, op: Op) -> Route<'_> {
    if b.read_only && op != Op::Read {
        return Route::ReadOnly;
    }
    match (op, &b.remap) {
        (Op::Read | Op::Write | Op::Discard | Op::WriteZeroes, Some(pool)) => Route::Remap(pool),
        (Op::Read, None) if b.dio => Route::DirectIo(Dir::Dest),
        (Op::Write, None) if b.dio => Route::DirectIo(Dir::Source),
        _ => Route::File,
    }
}

/// A request of [`Route::File`].
fn do_request(dev: &LoopDevice, b: &Binding, rq: &Request<LoopDevice>, done: usize) -> Result {
    match rq.op() {
        Op::Read => {
            let flags = if b.dio { iocb::DIRECT } else { 0 };
            let n = read_from(dev, b, rq, done, flags).map_err(io_error)?;
            if n < rq.len() as usize {
                // Past the end of the backing file (it shrank): zeroes, and EIO.
                rq.zero_fill();
                return Err(EIO);
            }
            Ok(())
        }
        Op::Write => write_all(dev, b, rq).map_err(io_error),
        Op::Flush => b.file.fsync().map_err(|_| EIO),
        Op::Discard => fallocate(rq, b, falloc::PUNCH_HOLE, &b.discard_off),
        Op::WriteZeroes => {
            if rq.no_unmap() {
                fallocate(rq, b, falloc::ZERO_RANGE, &b.zeroes_off)
            } else {
                fallocate(rq, b, falloc::PUNCH_HOLE, &b.zeroes_off)
            }
        }
        Op::Other => Err(EIO),
    }
}

/// The status a backing file's error ends a request with: its own errno, turned into
/// a `blk_status_t` by `errno_to_blk_status` (ENOSPC, ENOMEM, EOPNOTSUPP, ... keep
/// their meaning, anything unknown is EIO), as loop.c's `lo_complete_rq` does. Only a
/// stray EAGAIN, which means "would block" to a NOWAIT caller, becomes EIO.
fn io_error(e: Error) -> Error {
    if e == EAGAIN {
        EIO
    } else {
        e
    }
}

fn fallocate(rq: &Request<LoopDevice>, b: &Binding, mode: i32, off: &AtomicBool) -> Result {
    if off.load(Ordering::Relaxed) {
        return Err(eopnotsupp());
    }
    match b.file.fallocate(
        mode | falloc::KEEP_SIZE,
        rq.pos() + b.offset,
        u64::from(rq.len()),
    ) {
        Ok(()) => Ok(()),
        Err(e) if e == eopnotsupp() => {
            // Tell the block layer once and stop advertising it (one log line,
            // not one per request).
            if !off.swap(true, Ordering::Relaxed) {
                let zeroes = core::ptr::eq(off, &b.zeroes_off);
                let _ = rq.disk().update_limits(|l| {
                    if zeroes {
                        l.clear_write_zeroes();
                    } else {
                        l.clear_discard();
                    }
                });
                pr_warn!(
                    "loop{}: {} not supported by the backing file, switched off\n",
                    rq.data().number,
                    if zeroes { "write zeroes" } else { "discard" }
                );
            }
            Err(eopnotsupp())
        }
        Err(e) if e == EINVAL => Err(EINVAL),
        Err(_) => Err(EIO),
    }
}

/// Whether the backing file's filesystem has a write cache worth flushing.
pub(crate) fn write_cache_feature(file: &BackingFile, read_only: bool) -> u32 {
    if file.has_fsync() && !read_only {
        feat::WRITE_CACHE
    } else {
        0
    }
}
