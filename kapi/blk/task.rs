// SPDX-License-Identifier: GPL-2.0

//! The current task's block-layer state around the driver's I/O: its plug and
//! `PF_MEMALLOC_NOIO`.

use crate::kapi::helpers::*;
use kernel::{bindings, prelude::*};

/// Whether the current task holds a plug (`current->plug`). `->queue_rq` runs
/// under one only from a plug flush (`blk_mq_flush_plug_list`): bios the driver
/// submitted there would be added to the plug being flushed, so the caller
/// submits none (it hands the request to its worker instead). Reading the pointer
/// is all: the plug and the scheduler's `PF_BLOCK_TS` are never touched.
pub(crate) fn plugged() -> bool {
    // SAFETY: Reads the current task's own plug pointer.
    !unsafe { rust_loop_current_plug() }.is_null()
}

extern "C" {
    /// Exported by the scheduler (`kernel/sched/core.c`, for KVM's and vhost's
    /// polling); its header is not among the bindings'.
    fn single_task_running() -> bool;
}

/// Whether another task is runnable on this CPU (`!single_task_running()`): the
/// CPU is contended, so work done here delays it. Reads this CPU's run-queue
/// length without a lock, a hint: the task may move to another CPU right after.
pub(crate) fn cpu_contended() -> bool {
    // SAFETY: `single_task_running` only reads the current CPU's run-queue
    // length; it is callable in any context, preemptible included.
    !unsafe { single_task_running() }
}

/// Runs `f` under a plug of its own (`blk_start_plug`/`blk_finish_plug`): bios it
/// submits reach their device together at the end (or when the task sleeps), one
/// queue run and doorbell for the lot instead of one each.
pub(crate) fn with_plug<R>(f: impl FnOnce() -> R) -> R {
    let mut plug = core::mem::MaybeUninit::<bindings::blk_plug>::uninit();
    let p = plug.as_mut_ptr();
    // SAFETY: `plug` stays in this frame, unmoved, until `blk_finish_plug` below;
    // `blk_start_plug` initialises it (and only installs it if the task has none).
    unsafe { bindings::blk_start_plug(p) };
    let r = f();
    // SAFETY: Ends the plug started above.
    unsafe { bindings::blk_finish_plug(p) };
    r
}

/// Runs `f` with `PF_MEMALLOC_NOIO` set: allocations in it never recurse into I/O
/// (which could come back to this loop device).
pub(crate) fn noio<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Save/restore pair on the current task.
    let flags = unsafe { rust_loop_noio_save() };
    let r = f();
    // SAFETY: Restores what `noio_save` returned.
    unsafe { rust_loop_noio_restore(flags) };
    r
}

/// Runs `f` as loop.ko's worker runs (`loop_process_work`): with
/// `PF_MEMALLOC_NOIO` (as [`noio`]) and `PF_LOCAL_THROTTLE`, so that dirty
/// throttling weighs only the backing file's own device. The worker cleans the
/// loop device's dirty pages; throttling it against the global dirty count, which
/// includes them, would slow the cleaning down.
pub(crate) fn as_io_worker<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Sets two flags of the current task and returns their old values.
    let old = unsafe { rust_loop_worker_flags_set() };
    let r = f();
    // SAFETY: Puts back what `worker_flags_set` returned, on the same task.
    unsafe { rust_loop_worker_flags_restore(old) };
    r
}

#[kunit_tests(rust_loop_plug)]
mod tests {
    use super::*;

    /// `plugged` sees a plug exactly while one is started, and `with_plug` leaves
    /// none behind.
    #[test]
    fn plugged_follows_the_tasks_plug() {
        let before = plugged();
        let inside = with_plug(plugged);
        let after = plugged();
        assert_eq!((before, inside, after), (false, true, false));
    }
}
