// SPDX-License-Identifier: GPL-2.0

//! The blk-mq tag set.

use super::*;
use core::marker::PhantomData;
use kernel::{bindings, error::to_result, prelude::*, types::Opaque};

/// The blk-mq tag set shared by every disk of the driver.
///
/// Sharing it is what keeps an unattached device cheap: its queue has no requests
/// of its own preallocated (loop.ko preallocates 128 per device).
///
/// # Invariants
///
/// `set` was initialised by `blk_mq_alloc_tag_set` and is freed in `drop`.
pub(crate) struct TagSet<T: DiskOps> {
    pub(super) set: Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>,
    _p: PhantomData<fn() -> T>,
}

// SAFETY: The tag set is used by the block core from any thread; we only pass it on.
unsafe impl<T: DiskOps> Send for TagSet<T> {}
// SAFETY: As above.
unsafe impl<T: DiskOps> Sync for TagSet<T> {}

impl<T: DiskOps> TagSet<T> {
    /// One hardware queue of `depth` tags; `queue_rq` may sleep (`BLK_MQ_F_BLOCKING`)
    /// because the fast path tries the backing file without a hand-off.
    pub(crate) fn new(depth: u32) -> Result<Self> {
        let set = KBox::pin(Opaque::<bindings::blk_mq_tag_set>::zeroed(), GFP_KERNEL)?;
        let p = set.get();
        // SAFETY: `p` is a zeroed, pinned tag set that outlives the call.
        let ret = unsafe {
            (*p).ops = &Vtables::<T>::MQ_OPS;
            (*p).nr_hw_queues = 1;
            (*p).nr_maps = 1;
            (*p).queue_depth = depth;
            (*p).numa_node = bindings::NUMA_NO_NODE;
            (*p).cmd_size = Pdu::SIZE;
            (*p).flags = bindings::BLK_MQ_F_STACKING
                | bindings::BLK_MQ_F_BLOCKING
                | bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
            bindings::blk_mq_alloc_tag_set(p)
        };
        to_result(ret)?;
        // INVARIANT: allocated above.
        Ok(Self {
            set,
            _p: PhantomData,
        })
    }
}

impl<T: DiskOps> Drop for TagSet<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant the set is allocated. Every disk made with it
        // holds an `Arc` of it until its `del_gendisk` (which takes the queue off
        // the set) is done, so no queue uses the set any more.
        unsafe { bindings::blk_mq_free_tag_set(self.set.get()) };
    }
}
