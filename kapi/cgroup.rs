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
use core::ptr::NonNull;
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

/// Which tenant a request belongs to, for choosing its worker (loop.ko's
/// `queue_on_root_worker`): its blkcg's address, or 0 when it has none or it is the
/// root cgroup, which the device's first worker serves. Only compared, never
/// dereferenced: a [`Tenant`] held for the key keeps the address from being reused.
pub(crate) fn tenant_key<T: super::blk::DiskOps>(rq: &Request<T>) -> usize {
    // SAFETY: `rq` is a started request we own; its bios, which pin their blkcg,
    // are alive while we borrow it.
    unsafe { rust_loop_rq_tenant_key(rq.raw()) as usize }
}

/// A counted reference on the (non-root) blkcg a request is charged to: what a
/// per-cgroup worker is kept for.
///
/// # Invariants
///
/// `0` is a css reference taken by [`Tenant::of`], dropped only by `drop`.
pub(crate) struct Tenant(NonNull<bindings::cgroup_subsys_state>);

// SAFETY: A css reference may be dropped on any thread and in any context
// (`css_put` is a percpu_ref put).
unsafe impl Send for Tenant {}
// SAFETY: Shared access only reads the address.
unsafe impl Sync for Tenant {}

impl Tenant {
    /// A reference on `rq`'s blkcg, or `None` when [`tenant_key`] is 0.
    pub(crate) fn of<T: super::blk::DiskOps>(rq: &Request<T>) -> Option<Self> {
        // SAFETY: As in `tenant_key`; the helper takes its own reference.
        let css = unsafe { rust_loop_rq_tenant_css_get(rq.raw()) };
        // INVARIANT: non-null means a reference was taken.
        NonNull::new(css).map(Self)
    }

    /// The key ([`tenant_key`]) of requests of this tenant.
    pub(crate) fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        // SAFETY: By the invariant we hold a reference; this drops it.
        unsafe { rust_loop_css_put(self.0.as_ptr()) }
    }
}

/// Whether the caller runs in a kernel thread (a kworker running a queue for the
/// block layer): I/O issued there is charged to the root cgroup unless a
/// [`Charge`] says otherwise.
pub(crate) fn in_kernel_thread() -> bool {
    // SAFETY: Reads the current task's flags; always valid in process context.
    unsafe { rust_loop_current_is_kthread() }
}
