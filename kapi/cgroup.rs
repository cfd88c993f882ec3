// SPDX-License-Identifier: GPL-2.0

//! Charging the worker's I/O to the cgroups of whoever submitted it.
//!
//! The worker is a kernel thread: left alone, every bio it issues and every page
//! it puts in the backing file's page cache belong to the root cgroup, so a
//! container's `io.max` and `memory.max` would not hold through a loop device.
//! loop.ko associates its worker with the request's blkcg and makes the matching
//! memcg the active one for the time of the request (`loop_handle_cmd`); [`Charge`]
//! does the same. Bios cloned for a remap carry the original's blkcg already
//! (`bio_alloc_clone`), and what `->queue_rq` does itself runs in the submitter's
//! own context.

use super::blk::Request;
use super::helpers::*;
use core::marker::PhantomData;
use kernel::bindings;

/// While alive, the current kernel thread's I/O is charged to a request's blkcg
/// and its memory to that blkcg's memcg. Dropped on the same thread (`!Send`).
///
/// # Invariants
///
/// `blkcg` is true iff `kthread_associate_blkcg` was called with a css by `enter`;
/// `memcg` is null or a css reference taken by `enter`, made the active memcg
/// with `old` saved.
pub(crate) struct Charge {
    blkcg: bool,
    memcg: *mut bindings::cgroup_subsys_state,
    old: *mut bindings::mem_cgroup,
    _not_send: PhantomData<*mut ()>,
}

impl Charge {
    /// Charges what the current thread does from now on to the cgroups of `rq`'s
    /// first bio (loop.ko's rule), if it has one.
    pub(crate) fn enter<T: super::blk::DiskOps>(rq: &Request<T>) -> Self {
        // SAFETY: `rq` is a started request we own; its bios are alive until it
        // ends, which cannot happen while we borrow it.
        let blkcg = unsafe { rust_loop_rq_blkcg_css(rq.raw()) };
        if blkcg.is_null() {
            return Self {
                blkcg: false,
                memcg: core::ptr::null_mut(),
                old: core::ptr::null_mut(),
                _not_send: PhantomData,
            };
        }
        // SAFETY: `blkcg` is the css of the bio's blkg, pinned by the bio. The
        // association takes its own reference (dropped by the NULL association in
        // `drop`); `memcg_css_get` returns a counted reference or null.
        unsafe {
            rust_loop_kthread_associate_blkcg(blkcg);
            let memcg = rust_loop_memcg_css_get(blkcg);
            let old = if memcg.is_null() {
                core::ptr::null_mut()
            } else {
                rust_loop_set_active_memcg(rust_loop_memcg_from_css(memcg))
            };
            // INVARIANT: associated, and `memcg` held and active, as documented.
            Self {
                blkcg: true,
                memcg,
                old,
                _not_send: PhantomData,
            }
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if !self.memcg.is_null() {
            // SAFETY: By the invariant `old` was the active memcg before `enter` and
            // `memcg` is our reference; we are on the same thread (`!Send`).
            unsafe {
                rust_loop_set_active_memcg(self.old);
                rust_loop_css_put(self.memcg);
            }
        }
        if self.blkcg {
            // SAFETY: Ends the association `enter` made (and drops its reference).
            unsafe { rust_loop_kthread_associate_blkcg(core::ptr::null_mut()) };
        }
    }
}

/// Whether the caller runs in a kernel thread (a kworker running a queue for the
/// block layer): I/O issued there is charged to the root cgroup unless a
/// [`Charge`] says otherwise.
pub(crate) fn in_kernel_thread() -> bool {
    // SAFETY: Reads the current task's flags; always valid in process context.
    unsafe { rust_loop_current_is_kthread() }
}
