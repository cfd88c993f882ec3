// SPDX-License-Identifier: GPL-2.0

//! An owned workqueue (7.3's `kernel::workqueue` only borrows existing ones).

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, workqueue::Queue};

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
    /// An unbound, freezable workqueue named `loop<number>`, as loop.ko's (no
    /// rescuer: creating and destroying one per attach made detach 5x slower than
    /// loop.ko's).
    pub(crate) fn new_loop(number: u32) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_FREEZABLE;
        // SAFETY: The format string is static and takes one `%u`.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                kernel::str::as_char_ptr_in_const_context(c"loop%u").cast(),
                flags,
                0,
                number,
            )
        };
        // INVARIANT: non-NULL means allocated.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl OwnedQueue {
    /// Waits until every work item queued so far has finished running.
    pub(crate) fn flush(&self) {
        // SAFETY: By the invariant the queue is alive.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) }
    }
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
