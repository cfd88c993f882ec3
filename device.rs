// SPDX-License-Identifier: GPL-2.0

//! One loop device: its state, the data path's view of its binding, its counters,
//! the disk operations the block core calls, and the ending of its requests.

use crate::kapi::blk::{Disk, DiskOps, Request};
use crate::kapi::sync::{new_spinlock_irq, SpinLockIrq};
use crate::{ioctl, kapi, transfer};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
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
    /// Requests completed in `queue_rq` without a hand-off to the worker.
    pub(crate) inline: AtomicU64,
}

/// One loop device slot.
#[pin_data]
pub(crate) struct LoopDevice {
    /// The N of loopN.
    pub(crate) number: u32,
    /// Configuration; `lo_mutex`.
    #[pin]
    pub(crate) state: Mutex<ioctl::State>,
    /// What the data path uses; replaced only while the queue is frozen.
    #[pin]
    pub(crate) io: SpinLockIrq<Option<Arc<transfer::Binding>>>,
    /// Data path counters.
    pub(crate) stats: Stats,
    /// Requests started and not yet ended.
    pub(crate) inflight: AtomicUsize,
    /// Requests found alone in flight (see `transfer::queue_rq`).
    pub(crate) streak: AtomicU32,
}

impl LoopDevice {
    pub(crate) fn new(number: u32) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                state <- new_mutex!(ioctl::State::new()),
                io <- new_spinlock_irq!(None),
                stats: Stats::default(),
                inflight: AtomicUsize::new(0),
                streak: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The binding the data path uses now, if bound. Process context only: the
    /// returned reference may be the last one, and a binding's teardown sleeps.
    pub(crate) fn binding(&self) -> Option<Arc<transfer::Binding>> {
        self.io.lock().clone()
    }

    /// The worker of the current binding (any context: dropping it never sleeps).
    pub(crate) fn worker(&self) -> Option<Arc<transfer::Worker>> {
        self.io.lock().as_ref().map(|b| b.worker.clone())
    }

    /// Installs the data path's binding (`None`: unbound) and returns the old one.
    /// The caller drops it outside the spinlock and after unfreezing the queue: its
    /// teardown (backing file, `bioset_exit`) sleeps and takes `bio_slab_lock`, and
    /// memory reclaim, which a frozen queue's I/O may wait for, nests under that
    /// lock (lockdep: `bio_slab_lock` after `q_usage_counter`).
    #[must_use]
    pub(crate) fn set_binding(
        &self,
        b: Option<Arc<transfer::Binding>>,
    ) -> Option<Arc<transfer::Binding>> {
        core::mem::replace(&mut *self.io.lock(), b)
    }

    /// Current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase()
    }
}

impl DiskOps for LoopDevice {
    fn open(this: &Self, _disk: &Disk<Self>) -> Result {
        match this.phase() {
            Phase::Deleting | Phase::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    fn release(this: &Self, disk: &Disk<Self>, locked: &kapi::blk::OpenLocked<'_>) {
        ioctl::release(this, disk, locked)
    }

    fn ioctl(
        this: &Self,
        disk: &Disk<Self>,
        bdev: &kapi::blk::Bdev,
        mode: kapi::blk::OpenMode,
        cmd: u32,
        arg: usize,
        compat: bool,
    ) -> Result<i32> {
        ioctl::device(this, disk, bdev, mode, cmd, arg, compat)
    }

    fn queue_rq(this: &Self, rq: kapi::blk::Request<Self>, last: bool) {
        transfer::queue_rq(this, rq, last)
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
