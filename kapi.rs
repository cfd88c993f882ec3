// SPDX-License-Identifier: GPL-2.0

//! The abstraction layer of rust_loop.
//!
//! Every `unsafe` block and every `kernel::bindings` call of the driver lives below
//! this module, one file per kernel object, in the style of `rust/kernel/block/mq`.
//! The driver logic (`rust_loop.rs`, `ioctl.rs`, `transfer.rs`) uses only the safe
//! types exported here. Where 7.3's `kernel` crate has an abstraction (files, user
//! slices, locks, work items) it is reused; what it lacks for a loop driver (disk
//! operations, a fixed misc minor, a block major with a probe, backing file I/O on a
//! request's bvecs, sysfs attributes) is written here.

pub(crate) mod aio;
pub(crate) mod bio;
pub(crate) mod blk;
pub(crate) mod chrdev;
pub(crate) mod file;
mod helpers;
pub(crate) mod sysfs;
pub(crate) mod uapi;
pub(crate) mod wq;

use kernel::bindings;

/// Whether the calling task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// A reference on this module: held while a device is bound, as loop.ko does, so
/// `rmmod` fails with `EBUSY` instead of tearing down a device under a mount.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference (the module is live: we are running its code).
    pub(crate) fn get() -> Self {
        // SAFETY: `THIS_MODULE` is valid while our code runs; `__module_get` only
        // increments the count of a live module.
        unsafe {
            bindings::__module_get(kernel::module::this_module::<crate::LocalModule>().as_ptr())
        };
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: Paired with `__module_get` in `get`.
        unsafe {
            bindings::module_put(kernel::module::this_module::<crate::LocalModule>().as_ptr())
        };
    }
}
