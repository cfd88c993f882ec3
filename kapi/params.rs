// SPDX-License-Identifier: GPL-2.0

//! The module parameters, declared in `rust_loop_params.c` (mode 0444, so they
//! show under `/sys/module/rust_loop/parameters/` as loop.ko's do under
//! `/sys/module/loop/parameters/`; the `kernel` crate registers mode 0).

use kernel::ffi::c_int;

extern "C" {
    static rust_loop_max_loop: c_int;
    static mut rust_loop_max_part: c_int;
    static rust_loop_hw_queue_depth: c_int;
}

/// `max_loop`: devices created at load.
pub(crate) fn max_loop() -> i32 {
    // SAFETY: Written only by the parameter parser before `init` runs (mode 0444:
    // no sysfs writes), so reading it afterwards races with nothing.
    unsafe { rust_loop_max_loop }
}

/// `max_part`: partitions per device.
pub(crate) fn max_part() -> i32 {
    // SAFETY: As in `max_loop`.
    unsafe { core::ptr::read_volatile(&raw const rust_loop_max_part) }
}

/// Rewrites `max_part` to what the part shift allows (`2^shift - 1`), as loop.ko
/// does, so that user space reads the number of minors per device. Called once
/// from `init`.
pub(crate) fn set_max_part(v: i32) {
    // SAFETY: A plain aligned `int` store; the only other accessor is sysfs's
    // `param_get_int`, which reads it whole (as loop.ko's rewrite races with it).
    unsafe { core::ptr::write_volatile(&raw mut rust_loop_max_part, v) }
}

/// `hw_queue_depth`: requests in flight per device (at least 1: the parameter's
/// setter refuses anything less, as loop.ko's).
pub(crate) fn hw_queue_depth() -> u32 {
    // SAFETY: As in `max_loop`.
    let v = unsafe { rust_loop_hw_queue_depth };
    v.max(1) as u32
}
