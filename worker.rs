// SPDX-License-Identifier: GPL-2.0

//! The workers of a bound device: what `->queue_rq` does not finish itself goes to
//! one of them.
//!
//! As in loop.ko (`loop_queue_work`), each cgroup that does I/O through the device
//! gets a worker of its own, made the first time one of its requests is handed
//! over; the root cgroup's requests and those with no bio (a flush, which blk-mq
//! issues on its own request) go to the device's first worker, made at attach. A
//! worker that waits (for writeback throttled by a tenant's `io.max`, in dirty
//! throttling under its `memory.max`) then holds up only its own cgroup's
//! requests, not the other tenants of the device. Every worker charges each
//! request to the request's cgroups (`kapi::cgroup::Charge`).
//!
//! A worker is one work item on the driver's shared workqueue (a work item never
//! runs concurrently with itself), holding no thread. A tenant's worker is made
//! without sleeping (a request may be handed over from a completion, in interrupt
//! context); if that allocation fails, the device's first worker serves the
//! request, charged to the same cgroups. A tenant worker unused for
//! [`TENANT_IDLE`] is freed, with its reference on the cgroup, by a tenant's
//! hand-off (which looks at most once a second), or at detach (loop.ko frees it
//! from a timer after the same 60 s).

use crate::device::{complete, LoopDevice};
use crate::kapi;
use crate::kapi::blk::Request;
use crate::kapi::cgroup::{tenant_key, Tenant};
use crate::kapi::sync::{new_spinlock_irq, SpinLockIrq};
use crate::kapi::time::jiffies;
use crate::kapi::wq::OwnedQueue;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{
    alloc::Flags,
    impl_has_work, new_mutex, new_work,
    prelude::*,
    sync::{Arc, Mutex},
    time::{msecs_to_jiffies, Delta, Jiffies},
    workqueue::Work,
};

/// A tenant's worker unused this long is freed (loop.ko's
/// `LOOP_IDLE_WORKER_TIMEOUT`).
pub(crate) const TENANT_IDLE: Delta = Delta::from_secs(60);

/// Requests a tenant's worker holds before its queue grows (without sleeping,
/// as any worker's does).
const TENANT_DEPTH: usize = 16;

/// A request waiting for a worker, with how many bytes are already done.
pub(crate) struct Pending {
    pub(crate) rq: Request<LoopDevice>,
    pub(crate) done: usize,
}

/// The requests handed to a worker, and whether a run of its work is queued or
/// running that will take them.
///
/// # Invariants
///
/// `list` is not empty only while `scheduled` is true.
struct Queue {
    list: KVec<Pending>,
    scheduled: bool,
}

/// One worker: a queue of requests and the work item that drains it.
#[pin_data]
pub(crate) struct Worker {
    /// Requests handed over (also from direct I/O completions, in interrupt
    /// context: hence the irq-safe lock).
    #[pin]
    pending: SpinLockIrq<Queue>,
    /// Requests handed to any worker of the device and not yet done (shared by
    /// the device's workers).
    queued: Arc<AtomicUsize>,
    /// The batch being processed (only the work function uses it; it keeps its
    /// capacity so that the I/O path never allocates).
    #[pin]
    batch: Mutex<KVec<Pending>>,
    #[pin]
    work: Work<Worker>,
    wq: Arc<OwnedQueue>,
}

impl_has_work! {
    impl HasWork<Self> for Worker { self.work }
}

impl Worker {
    /// A worker (on the driver's workqueue `wq`) that can hold `depth` requests
    /// without allocating.
    fn new(
        wq: Arc<OwnedQueue>,
        queued: Arc<AtomicUsize>,
        depth: usize,
        gfp: Flags,
    ) -> Result<Arc<Self>> {
        let pending = KVec::with_capacity(depth, gfp)?;
        let batch = KVec::with_capacity(depth, gfp)?;
        Arc::pin_init(
            pin_init!(Self {
                pending <- new_spinlock_irq!(Queue {
                    list: pending,
                    scheduled: false,
                }),
                queued,
                batch <- new_mutex!(batch),
                work <- new_work!("rust_loop::Worker::work"),
                wq,
            }),
            gfp,
        )
    }

    /// Queues `p`; gives it back when there is no room and none can be made
    /// without sleeping (the caller ends it, with no lock held).
    fn push(this: &Arc<Self>, p: Pending) -> Result<(), Pending> {
        this.queued.fetch_add(1, Ordering::Relaxed);
        let kick = {
            let mut q = this.pending.lock();
            // A device with more than `hw_queue_depth` requests in flight (the
            // shared tag set lets a busy device have more): grow without sleeping.
            // The capacity stays, so this happens once per size.
            if q.list.len() == q.list.capacity() && q.list.reserve(1, GFP_ATOMIC).is_err() {
                drop(q);
                this.queued.fetch_sub(1, Ordering::Relaxed);
                // Never dropped unended: the I/O fails (ENOMEM), it does not hang.
                return Err(p);
            }
            // Cannot fail: there is room.
            let _ = q.list.push_within_capacity(p);
            !core::mem::replace(&mut q.scheduled, true)
        };
        // While a run is queued or running, the work function takes the list
        // under this lock until it finds it empty: only a request that finds no
        // run coming queues the work. (Queueing a work item that is running wakes
        // an idle kworker of the pool only to hand the item back to the running
        // one.)
        if kick {
            let _ = this.wq.enqueue(this.clone());
        }
        Ok(())
    }

    /// Runs `run_batch` on each batch of requests handed over until none is left.
    /// Only the work function calls this (one at a time: the work item is not
    /// reentrant, and the batch vector is its own).
    pub(crate) fn drain(&self, mut run_batch: impl FnMut(&mut KVec<Pending>)) {
        let mut batch = self.batch.lock();
        loop {
            {
                let mut q = self.pending.lock();
                core::mem::swap(&mut q.list, &mut *batch);
                if batch.is_empty() {
                    q.scheduled = false;
                    break;
                }
            }
            let n = batch.len();
            run_batch(&mut batch);
            // Whatever `run_batch` left is dropped, which ends it with an error.
            batch.clear();
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Waits for this worker's work function to return.
    fn quiesce(&self) {
        kapi::wq::flush_work(&self.work);
    }
}

/// A tenant's worker and when a request was last handed to it (jiffies).
struct TenantWorker {
    tenant: Tenant,
    worker: Arc<Worker>,
    last: Jiffies,
}

/// The tenants' workers, and when the list was last swept for idle ones.
struct TenantList {
    list: KVec<TenantWorker>,
    swept: Jiffies,
}

/// The workers of a bound device (made at attach, shared by its bindings until
/// detach).
#[pin_data]
pub(crate) struct Workers {
    /// Serves the root cgroup and requests with no cgroup, and any request whose
    /// tenant's worker could not be made.
    root: Arc<Worker>,
    /// One worker per other cgroup with I/O on the device; few, so a list.
    #[pin]
    tenants: SpinLockIrq<TenantList>,
    /// Requests handed to any of them and not yet done.
    queued: Arc<AtomicUsize>,
    wq: Arc<OwnedQueue>,
    /// [`TENANT_IDLE`] and the sweep's interval in jiffies (converted once).
    idle: Jiffies,
    sweep: Jiffies,
}

impl Workers {
    /// The workers of a device on the driver's workqueue `wq`; the first can hold
    /// `depth` requests without allocating.
    pub(crate) fn new(wq: Arc<OwnedQueue>, depth: usize) -> Result<Arc<Self>> {
        let queued = Arc::new(AtomicUsize::new(0), GFP_KERNEL)?;
        let root = Worker::new(wq.clone(), queued.clone(), depth, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                root,
                tenants <- new_spinlock_irq!(TenantList {
                    list: KVec::new(),
                    swept: jiffies(),
                }),
                queued,
                wq,
                idle: msecs_to_jiffies(TENANT_IDLE.as_millis() as u32),
                sweep: msecs_to_jiffies(1000),
            }),
            GFP_KERNEL,
        )
    }

    /// No request is waiting for or being processed by any of the workers.
    pub(crate) fn idle(&self) -> bool {
        self.queued.load(Ordering::Relaxed) == 0
    }

    /// Hands a request to the worker of its cgroup (any context).
    ///
    /// A tenant's request is queued with the tenant list locked: its worker is
    /// neither cloned nor freed on the way, and the hot path reads no clock but
    /// `jiffies`. Once a second at most, tenant workers unused for
    /// [`TENANT_IDLE`] are freed on the way (a short list, nothing to free most
    /// of the time).
    pub(crate) fn push(&self, p: Pending) {
        let key = tenant_key(&p.rq);
        let refused = if key == 0 {
            Worker::push(&self.root, p)
        } else {
            let mut t = self.tenants.lock();
            let now = jiffies();
            if now.wrapping_sub(t.swept) >= self.sweep {
                let idle = self.idle;
                // A worker that is still queued or running holds its own
                // reference, so freeing it here only lets it go when it is done.
                // Dropping a worker and a css reference never sleeps.
                t.list
                    .retain(|w| w.tenant.key() == key || now.wrapping_sub(w.last) < idle);
                t.swept = now;
            }
            match t.list.iter_mut().find(|w| w.tenant.key() == key) {
                Some(w) => {
                    w.last = now;
                    Worker::push(&w.worker, p)
                }
                None => match self.new_tenant(&mut t.list, &p.rq, now) {
                    Some(w) => Worker::push(&w, p),
                    None => {
                        drop(t);
                        Worker::push(&self.root, p)
                    }
                },
            }
        };
        // Ended only with no lock held: a completion may submit I/O to this
        // device again.
        if let Err(p) = refused {
            complete(p.rq, Err(ENOMEM));
        }
    }

    /// Makes the worker of `rq`'s tenant, without sleeping, and adds it to `list`.
    fn new_tenant(
        &self,
        list: &mut KVec<TenantWorker>,
        rq: &Request<LoopDevice>,
        now: Jiffies,
    ) -> Option<Arc<Worker>> {
        let tenant = Tenant::of(rq)?;
        let worker = Worker::new(
            self.wq.clone(),
            self.queued.clone(),
            TENANT_DEPTH,
            GFP_ATOMIC,
        )
        .ok()?;
        list.push(
            TenantWorker {
                tenant,
                worker: worker.clone(),
                last: now,
            },
            GFP_ATOMIC,
        )
        .ok()?;
        Some(worker)
    }

    /// How many tenant workers the device has (debugfs).
    pub(crate) fn tenants(&self) -> usize {
        self.tenants.lock().list.len()
    }

    /// Waits for every worker's work function to return, and frees the tenant
    /// workers. Detach calls this with the queue frozen (or no opener left), so
    /// nothing of the device runs after its backing file is released. Only this
    /// device's work is waited for: other devices' work, which may be I/O stacked
    /// on this one, is not.
    pub(crate) fn quiesce(&self) {
        self.root.quiesce();
        let tenants = core::mem::take(&mut self.tenants.lock().list);
        for t in &tenants {
            t.worker.quiesce();
        }
    }
}
