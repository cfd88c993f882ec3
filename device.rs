// SPDX-License-Identifier: GPL-2.0

//! One loop device and the types it is made of: its state and configuration
//! (guarded by `lo_mutex`), the data path's view of its binding, its worker, its
//! counters, and the ending of its requests. These types refer to each other, so
//! they share this file; what acts on them (ioctl.rs, transfer.rs, bio_remap.rs)
//! depends on it, never the other way round.

use crate::kapi::bio::BioSet;
use crate::kapi::blk::Request;
use crate::kapi::file::{iocb, BackingFile, FileKind, GfpMask};
use crate::kapi::sync::{new_spinlock_irq, SpinLockIrq};
use crate::kapi::uapi::{flags, LO_NAME_SIZE};
use crate::kapi::ModuleRef;
pub(crate) use crate::worker::{Pending, Workers};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    time::Delta,
};

/// Where a device is in its life (loop.c's `lo_state`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// No backing file.
    Unbound,
    /// Serving I/O from a backing file.
    Bound,
    /// Detaching at last close.
    Rundown,
    /// Being removed by `LOOP_CTL_REMOVE`.
    Deleting,
}

/// Counters of the data path, per device (`/sys/kernel/debug/rust_loop/stats`).
#[derive(Default)]
pub(crate) struct Stats {
    /// Requests completed.
    pub(crate) requests: AtomicU64,
    /// Bvec segments handed to the backing file.
    pub(crate) segments: AtomicU64,
    /// Bytes moved between request pages and the backing file.
    pub(crate) bytes: AtomicU64,
    /// Requests completed in `queue_rq`, or remapped from there, without a
    /// hand-off to the worker.
    pub(crate) inline: AtomicU64,
}

/// One loop device slot.
#[pin_data]
pub(crate) struct LoopDevice {
    /// The N of loopN.
    pub(crate) number: u32,
    /// Configuration; `lo_mutex`.
    #[pin]
    pub(crate) state: Mutex<State>,
    /// What the data path uses; replaced only while the queue is frozen.
    #[pin]
    pub(crate) io: SpinLockIrq<Option<Arc<Binding>>>,
    /// Data path counters.
    pub(crate) stats: Stats,
    /// Requests started and not yet ended.
    pub(crate) inflight: AtomicUsize,
    /// Requests found alone in flight (see `transfer::queue_rq`).
    pub(crate) streak: AtomicU32,
    /// Requests that still go to the worker though they find the queue empty,
    /// because a recent one found others in flight (see `transfer::queue_rq`).
    pub(crate) pipeline: AtomicU32,
    /// How long a remapped request spends at the backing device at the least, in
    /// microseconds: the lower envelope of recent requests' times (see
    /// [`lower_envelope`]; 0 until the first).
    pub(crate) backing_us: AtomicU32,
    /// How often recent submissions found their CPU contended, in 1/1024 (see
    /// [`recent_average`]; 0 until the first).
    pub(crate) contention: AtomicU32,
    /// The task that submitted the last request that found others in flight.
    pub(crate) last_submitter: AtomicI32,
    /// How often such a request came from another task than the one before it,
    /// in 1/1024 (see [`recent_average`]): more than one submitter.
    pub(crate) submitters: AtomicU32,
}

impl LoopDevice {
    pub(crate) fn new(number: u32) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                state <- new_mutex!(State::new()),
                io <- new_spinlock_irq!(None),
                stats: Stats::default(),
                inflight: AtomicUsize::new(0),
                streak: AtomicU32::new(0),
                pipeline: AtomicU32::new(0),
                backing_us: AtomicU32::new(0),
                contention: AtomicU32::new(0),
                last_submitter: AtomicI32::new(0),
                submitters: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The binding the data path uses now, if bound. Process context only: the
    /// returned reference may be the last one, and a binding's teardown sleeps.
    pub(crate) fn binding(&self) -> Option<Arc<Binding>> {
        self.io.lock().clone()
    }

    /// The workers of the current binding (any context: dropping them never sleeps).
    pub(crate) fn worker(&self) -> Option<Arc<Workers>> {
        self.io.lock().as_ref().map(|b| b.worker.clone())
    }

    /// Installs the data path's binding (`None`: unbound) and returns the old one.
    /// The caller drops it outside the spinlock and after unfreezing the queue: its
    /// teardown (backing file, `bioset_exit`) sleeps and takes `bio_slab_lock`, and
    /// memory reclaim, which a frozen queue's I/O may wait for, nests under that
    /// lock (lockdep: `bio_slab_lock` after `q_usage_counter`).
    #[must_use]
    pub(crate) fn set_binding(&self, b: Option<Arc<Binding>>) -> Option<Arc<Binding>> {
        // A new backing device has not been measured yet.
        self.backing_us.store(0, Ordering::Relaxed);
        core::mem::replace(&mut *self.io.lock(), b)
    }

    /// Current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase()
    }

    /// Counts a request in (`->queue_rq`); returns how many the device had in
    /// flight before it. Paired with [`complete`].
    pub(crate) fn start_request(&self) -> usize {
        self.inflight.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds one remapped request's time at the backing device to the estimate
    /// (any context; two completions at once may lose one sample, which an
    /// estimate can spare).
    pub(crate) fn note_backing_time(&self, t: Delta) {
        let sample = t.as_micros_ceil().clamp(0, i64::from(u32::MAX)) as u32;
        let est = self.backing_us.load(Ordering::Relaxed);
        self.backing_us
            .store(lower_envelope(est, sample), Ordering::Relaxed);
    }

    /// Whether remapped requests have been spending at least `at_least` at the
    /// backing device.
    pub(crate) fn backing_slower_than(&self, at_least: Delta) -> bool {
        i64::from(self.backing_us.load(Ordering::Relaxed)) >= at_least.as_micros_ceil()
    }

    /// Adds whether a submission found its CPU contended to the average and
    /// returns whether most recent ones did (any context; a lost update between
    /// two CPUs costs one sample).
    pub(crate) fn note_contention(&self, contended: bool) -> bool {
        note(&self.contention, contended) >= RECENT_ALL / 2
    }

    /// Adds the submitter `pid` of a request that found others in flight and
    /// returns whether a quarter of recent ones or more came from another task
    /// than the one before them: the device has several submitters at once, not
    /// one deep one.
    pub(crate) fn note_submitter(&self, pid: i32) -> bool {
        let other = self.last_submitter.load(Ordering::Relaxed) != pid;
        if other {
            self.last_submitter.store(pid, Ordering::Relaxed);
        }
        note(&self.submitters, other) >= RECENT_ALL / 4
    }
}

/// Adds `hit` to the [`recent_average`] kept in `avg` and returns the new
/// average. Written only when it changes: a device that keeps one way (one deep
/// submitter, an uncontended CPU) only reads the line its CPUs share.
fn note(avg: &AtomicU32, hit: bool) -> u32 {
    let old = avg.load(Ordering::Relaxed);
    let new = recent_average(old, hit);
    if new != old {
        avg.store(new, Ordering::Relaxed);
    }
    new
}

/// The scale of [`recent_average`]: every recent submission counted.
const RECENT_ALL: u32 = 1024;

/// The share of recent submissions that had a property (found their CPU
/// contended, came from another task), in 1/`RECENT_ALL`, from the last average
/// `avg` and whether a new submission had it (`hit`): an exponential average that
/// gives the new one an eighth. One submission that finds another task runnable,
/// or one that finds none, does not flip a device whose CPUs are busy 70-80% of
/// the time between its two ways of submitting (four busy devices on two vCPUs,
/// docs/benchmark.md, session 24); a device whose submitters keep finding the CPU
/// contended crosses half in six.
fn recent_average(avg: u32, hit: bool) -> u32 {
    let new = if hit { RECENT_ALL } else { 0 };
    let avg = avg.min(RECENT_ALL);
    if new >= avg {
        avg + (new - avg).div_ceil(8)
    } else {
        avg - (avg - new).div_ceil(8)
    }
}

/// The least time recent requests spent at the backing device, from the last
/// estimate `est` and a new request's time `sample` (microseconds): a faster
/// request lowers it to its own time at once; a slower one raises it by a
/// sixteenth of the difference. A device whose every request takes 5 ms reaches
/// 1 ms after four; one that completes some requests in microseconds stays low
/// though others waited long for a CPU (a softirq, the end of a plug: time that
/// is not the device's), as on a host whose CPUs are saturated.
fn lower_envelope(est: u32, sample: u32) -> u32 {
    if sample <= est {
        sample
    } else {
        est + (sample - est) / 16
    }
}

impl Stats {
    pub(crate) fn add(&self, segments: u32, bytes: usize) {
        self.segments
            .fetch_add(u64::from(segments), Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Ends a request of ours (counted).
pub(crate) fn complete(rq: Request<LoopDevice>, res: Result) {
    let dev = rq.data();
    dev.stats.requests.fetch_add(1, Ordering::Relaxed);
    dev.inflight.fetch_sub(1, Ordering::Relaxed);
    rq.end(res);
}

/// A device's state (guarded by `LoopDevice::state`), loop.c's `lo_state` with
/// the configuration it implies: only a bound device (or one running down) has
/// one, so no ioctl can see "bound" without a configuration.
pub(crate) enum State {
    /// No backing file. Keeps the workers of the last binding, drained and with no
    /// tenant's worker, for the next attach (loop.ko keeps its workqueue from the
    /// first attach to the device's removal): an attach makes no workers and a
    /// detach frees none (docs/benchmark.md, "Session 25").
    Unbound(Option<Arc<Workers>>),
    /// Serving I/O from a backing file.
    Bound(Config),
    /// Detaching at the last close (`LOOP_CLR_FD` by the sole opener, or
    /// autoclear); I/O is still served until then.
    Rundown(Config),
    /// Being removed by `LOOP_CTL_REMOVE`.
    Deleting,
}

impl State {
    pub(crate) const fn new() -> Self {
        State::Unbound(None)
    }

    /// The phase, for the registry and `open`.
    pub(crate) fn phase(&self) -> Phase {
        match self {
            State::Unbound(_) => Phase::Unbound,
            State::Bound(_) => Phase::Bound,
            State::Rundown(_) => Phase::Rundown,
            State::Deleting => Phase::Deleting,
        }
    }

    /// The configuration of a bound device; ENXIO otherwise (loop.c's check of
    /// `Lo_bound` in every ioctl that needs a binding).
    pub(crate) fn bound(&self) -> Result<&Config> {
        match self {
            State::Bound(c) => Ok(c),
            _ => Err(ENXIO),
        }
    }

    pub(crate) fn bound_mut(&mut self) -> Result<&mut Config> {
        match self {
            State::Bound(c) => Ok(c),
            _ => Err(ENXIO),
        }
    }

    /// Bound -> Rundown, keeping the configuration (anything else: unchanged).
    pub(crate) fn run_down(&mut self) {
        *self = match core::mem::replace(self, State::Unbound(None)) {
            State::Bound(c) => State::Rundown(c),
            other => other,
        };
    }
}

/// What a bound device was configured with.
pub(crate) struct Config {
    pub(crate) file: BackingFile,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    /// Effective `lo_flags` (READ_ONLY and DIRECT_IO as in effect).
    pub(crate) flags: u32,
    pub(crate) block_size: u32,
    pub(crate) file_name: [u8; LO_NAME_SIZE],
    pub(crate) gfp: GfpMask,
    pub(crate) worker: Arc<Workers>,
    /// Clone pool when the backing block device is served by bio remapping.
    pub(crate) remap: Option<Arc<BioSet>>,
    pub(crate) _module: ModuleRef,
}

impl Config {
    /// A data-path binding of the current file, offset and worker, with direct
    /// I/O as given (for changes that keep everything else).
    pub(crate) fn binding(&self, dio: bool) -> Result<Arc<Binding>> {
        let b = Binding::new(
            self.file.clone(),
            self.offset,
            self.flags & flags::READ_ONLY != 0,
            dio,
            self.worker.clone(),
            self.remap.clone(),
        );
        Ok(Arc::new(b, GFP_KERNEL)?)
    }
}

/// What the data path needs of a bound device. Immutable: a change (offset,
/// direct I/O, backing file) installs a new `Binding` while the queue is frozen.
pub(crate) struct Binding {
    /// The backing file.
    pub(crate) file: BackingFile,
    /// Byte offset of the device's start in the file.
    pub(crate) offset: u64,
    /// Writes fail with EIO.
    pub(crate) read_only: bool,
    /// Direct I/O to the backing file.
    pub(crate) dio: bool,
    /// Buffered reads may be tried in `queue_rq`: with `IOCB_NOWAIT` where the
    /// file takes it (`FMODE_NOWAIT`), plainly on tmpfs (a read there is a copy
    /// from memory; it only waits if the page was swapped out). `None`: always
    /// hand off.
    pub(crate) inline_read: Option<u32>,
    /// A write may be done in `queue_rq`: tmpfs only, where it is a copy into
    /// memory (it waits only for a swap-in, which `queue_rq` rules out per request).
    pub(crate) inline_write: bool,
    /// Direct I/O may be submitted from `queue_rq` (`IOCB_NOWAIT`, completing
    /// asynchronously). Regular files only, as `inline_read`.
    pub(crate) inline_dio: bool,
    /// The device's workers (the first and one per cgroup with I/O).
    pub(crate) worker: Arc<Workers>,
    /// Clone pool when bios are remapped onto a backing block device.
    pub(crate) remap: Option<Arc<BioSet>>,
    /// Remapped requests may be submitted from `queue_rq` at any depth when the
    /// backing device is slow: its driver has no doorbell to save by batching
    /// (no `->commit_rqs`), so a clone sent alone costs what it costs in a batch.
    pub(crate) remap_unbatched: bool,
    /// Set once the filesystem said EOPNOTSUPP to a hole punch / zero range.
    pub(crate) discard_off: AtomicBool,
    pub(crate) zeroes_off: AtomicBool,
}

impl Binding {
    /// A binding of `file` served by `worker`.
    pub(crate) fn new(
        file: BackingFile,
        offset: u64,
        read_only: bool,
        dio: bool,
        worker: Arc<Workers>,
        remap: Option<Arc<BioSet>>,
    ) -> Self {
        // Inline reads are page-cache hits only: IOCB_NOIO starts no readahead, so
        // ->queue_rq neither submits backing I/O nor takes the backing file's
        // invalidate_lock while the caller (a filesystem on the loop device doing
        // its own readahead) holds its own (lockdep: recursive locking).
        //
        // Only for regular files: a block device read through its file (the
        // unaligned-offset fallback, loop on loop) takes the block device inode's
        // lock, of the same lock class as the one a writer to the loop device holds
        // while it reads a block for read-modify-write (lockdep: recursive locking).
        let regular = matches!(file.kind(), FileKind::Regular);
        let inline_write = regular && file.is_shmem();
        let inline_read = if !regular {
            None
        } else if file.supports_nowait() {
            Some(iocb::NOWAIT | iocb::NOIO)
        } else if file.is_shmem() {
            Some(0)
        } else {
            None
        };
        let remap_unbatched =
            remap.is_some() && file.block_device().is_some_and(|d| !d.commits_batches());
        Self {
            file,
            offset,
            read_only,
            dio,
            inline_read,
            inline_write,
            inline_dio: regular,
            worker,
            remap,
            remap_unbatched,
            discard_off: AtomicBool::new(false),
            zeroes_off: AtomicBool::new(false),
        }
    }
}

#[kunit_tests(rust_loop_device)]
mod tests {
    use super::{lower_envelope, recent_average, RECENT_ALL};

    /// The estimate drops to a faster request at once and rises toward slower
    /// ones by a sixteenth: a device whose every request takes 5 ms is over 1 ms
    /// after four, and one fast request among slow ones brings it back down.
    #[test]
    fn lower_envelope_drops_at_once_and_rises_slowly() {
        assert_eq!(lower_envelope(0, 0), 0);
        assert_eq!(lower_envelope(5000, 20), 20);
        assert_eq!(lower_envelope(0, 1600), 100);
        let mut est = 0;
        let mut n = 0;
        while est < 1000 {
            est = lower_envelope(est, 5000);
            n += 1;
        }
        assert_eq!(n, 4);
        assert!(lower_envelope(est, 5000) > est);
        assert_eq!(lower_envelope(est, 30), 30);
        assert_eq!(lower_envelope(u32::MAX - 1, u32::MAX), u32::MAX - 1);
    }

    /// The average crosses half after six contended submissions in a
    /// row from none, falls back below it after six free ones, stays within its
    /// scale, and reaches both ends.
    #[test]
    fn recent_average_needs_a_run_to_cross_half() {
        let run = |mut avg: u32, contended: bool| {
            let mut n = 0;
            while (avg >= RECENT_ALL / 2) != contended {
                avg = recent_average(avg, contended);
                n += 1;
            }
            (n, avg)
        };
        let (up, high) = run(0, true);
        assert_eq!(up, 6);
        let (down, _) = run(RECENT_ALL, false);
        assert_eq!(down, 6);
        // One free submission among contended ones leaves the device contended.
        assert!(recent_average(high.max(RECENT_ALL * 3 / 4), false) >= RECENT_ALL / 2);
        let mut avg = 0;
        for _ in 0..100 {
            avg = recent_average(avg, true);
        }
        assert_eq!(avg, RECENT_ALL);
        for _ in 0..100 {
            avg = recent_average(avg, false);
        }
        assert_eq!(avg, 0);
        assert_eq!(recent_average(u32::MAX, true), RECENT_ALL);
    }
}
