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
//!
//! It also absorbs the differences between the `kernel` crates of the releases
//! rust_loop supports (7.2 and 7.3): Kbuild passes `--cfg rl_kernel_ge_7_3` for
//! 7.3 and later, and only files below this module look at it.

pub(crate) mod aio;
pub(crate) mod bio;
pub(crate) mod blk;
pub(crate) mod cgroup;
pub(crate) mod chrdev;
pub(crate) mod errno;
pub(crate) mod file;
mod helpers;
pub(crate) mod params;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod time;
pub(crate) mod uapi;
pub(crate) mod wq;

use kernel::bindings;

/// Whether the calling task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// `THIS_MODULE` of rust_loop, for `owner` fields and module references. 7.3's
/// `kernel` crate gives it per module type; 7.2's `module!` emits a static.
pub(crate) const fn this_module() -> *mut bindings::module {
    #[cfg(rl_kernel_ge_7_3)]
    let m = kernel::module::this_module::<crate::LocalModule>();
    #[cfg(not(rl_kernel_ge_7_3))]
    let m = &crate::THIS_MODULE;
    m.as_ptr()
}

/// A reference on this module: held while a device is bound, as loop.ko does, so
/// `rmmod` fails with `EBUSY` instead of tearing down a device under a mount.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference (the module is live: we are running its code).
    pub(crate) fn get() -> Self {
        // SAFETY: `THIS_MODULE` is valid while our code runs; `__module_get` only
        // increments the count of a live module.
        unsafe { bindings::__module_get(this_module()) };
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: Paired with `__module_get` in `get`.
        unsafe { bindings::module_put(this_module()) };
    }
}

/// Logs a line at `KERN_WARNING` without the module-name prefix that `pr_warn!`
/// adds: for the lines loop.ko prints verbatim (loop.c has no `pr_fmt`), which
/// scripts and admins grep for. The line ends with a newline of its own.
pub(crate) fn warn_verbatim(args: core::fmt::Arguments<'_>) {
    // SAFETY: `%pA` formats the `fmt::Arguments` the pointer points to (the
    // kernel's `rust_fmt_argument`, as `kernel::print` uses it); `args` outlives
    // the call.
    unsafe {
        bindings::_printk(
            kernel::str::as_char_ptr_in_const_context(c"\x014%pA"),
            core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
        )
    };
}
