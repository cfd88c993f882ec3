// SPDX-License-Identifier: GPL-2.0

//! An owned workqueue (7.3's `kernel::workqueue` only borrows existing ones).

use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    workqueue::{Queue, Work},
};

/// A workqueue allocated by the driver; destroyed (after draining) on drop.
///
/// # Invariants
///
/// `0` came from `alloc_workqueue` and is not destroyed before `drop`.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: Queueing work is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// The driver's unbound, freezable workqueue (`rust_loop`), on which every
    /// device's worker is one work item (a work item never runs concurrently with
    /// itself, so each device still has exactly one worker). One queue for all:
    /// creating and destroying a workqueue per attach made detach 5x slower than
    /// loop.ko's.
    pub(crate) fn new_shared() -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_FREEZABLE;
        // SAFETY: The format string is static and takes no argument.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                kernel::str::as_char_ptr_in_const_context(c"rust_loop").cast(),
                flags,
                0,
            )
        };
        // INVARIANT: non-NULL means allocated.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

/// Waits until `work` is neither queued nor running (`flush_work`).
pub(crate) fn flush_work<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is an initialised work item, valid for the call.
    unsafe { bindings::flush_work(Work::raw_get(work)) };
}

impl core::ops::Deref for OwnedQueue {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        // SAFETY: By the invariant the queue is alive for as long as `self`.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the invariant the queue is alive; nothing uses it after this.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) }
    }
}
