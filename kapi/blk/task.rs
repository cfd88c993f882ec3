// SPDX-License-Identifier: GPL-2.0

//! The current task's block-layer state around the driver's I/O: its plug and
//! `PF_MEMALLOC_NOIO`.

use crate::kapi::helpers::*;
use kernel::{bindings, prelude::*};

/// Runs `f` with the current task's plug set aside.
///
/// `->queue_rq` may run from a plug flush (`blk_mq_flush_plug_list` walking
/// `current->plug`). I/O the driver submits inline (remapped clones, a backing
/// file's direct I/O) must not be added to that plug while it is being flushed:
/// with no plug, it is issued directly or plugged by its submitter's own plug.
/// The plug's cached timestamp goes with it (`PF_BLOCK_TS` is cleared), or a
/// context switch in `f` would find the flag and no plug.
pub(crate) fn without_plug<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Only the current task's own plug (pointer, cached timestamp, flag) is
    // read and cleared.
    let plug = unsafe { rust_loop_plug_take() };
    let r = f();
    // SAFETY: Puts back the pointer taken above, in the same task; the plug lives in
    // a frame below this one (the one that started it, or is flushing it).
    unsafe { rust_loop_plug_restore(plug) };
    r
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

#[kunit_tests(rust_loop_plug)]
mod tests {
    use super::*;
    use kernel::time::{delay::fsleep, Delta};

    fn current_plug() -> *mut bindings::blk_plug {
        // SAFETY: Reads the current task's own plug pointer.
        unsafe { rust_loop_current_plug() }
    }

    fn ts_cached() -> bool {
        // SAFETY: Reads the current task's own flags.
        unsafe { rust_loop_plug_ts_cached() }
    }

    /// A request stamped under a plug caches a timestamp and sets `PF_BLOCK_TS`;
    /// every context switch then clears the timestamp through `current->plug`.
    /// With the plug set aside, a sleep (a context switch away and back) must find
    /// the flag cleared, and the plug must come back as it was.
    #[test]
    fn plug_set_aside_survives_a_context_switch() {
        let mut plug = core::mem::MaybeUninit::<bindings::blk_plug>::uninit();
        let p = plug.as_mut_ptr();
        // SAFETY: `plug` stays in this frame, unmoved, until `blk_finish_plug`.
        unsafe { bindings::blk_start_plug(p) };
        // SAFETY: Caches a timestamp in the current task's plug, started above.
        unsafe { rust_loop_plug_cache_ts() };
        let before = (current_plug() == p, ts_cached());
        let inside = without_plug(|| {
            let seen = (current_plug().is_null(), ts_cached());
            fsleep(Delta::from_millis(2));
            seen
        });
        let after = current_plug() == p;
        // SAFETY: Ends the plug started above, still `current->plug`.
        unsafe { bindings::blk_finish_plug(p) };
        // Asserted only now: a failed assertion ends the test, which must not
        // leave `current->plug` pointing into this frame.
        assert_eq!(before, (true, true));
        assert_eq!(inside, (true, false));
        assert!(after);
        assert!(current_plug().is_null());
    }
}
