// SPDX-License-Identifier: GPL-2.0

//! Block devices as ioctls see them: how one was opened, the proof that the
//! disk's `open_mutex` is held, and claims.

use core::marker::PhantomData;
use kernel::{bindings, error::to_result, ffi, prelude::*, types::Opaque};

/// How a block device was opened (`blk_mode_t`).
#[derive(Clone, Copy)]
pub(crate) struct OpenMode(pub(super) u32);

impl OpenMode {
    /// Opened for writing (`BLK_OPEN_WRITE`).
    pub(crate) fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// Opened exclusively (`BLK_OPEN_EXCL`).
    pub(crate) fn exclusive(self) -> bool {
        self.0 & 4 != 0
    }
}

/// Proof that the disk's `open_mutex` is held: only the block core's `release`
/// call hands one out, for its duration.
pub(crate) struct OpenLocked<'a>(pub(super) PhantomData<&'a ()>);

/// A block device (the whole disk or a partition) on which an ioctl arrived.
#[repr(transparent)]
pub(crate) struct Bdev(Opaque<bindings::block_device>);

impl Bdev {
    /// # Safety
    ///
    /// `ptr` is a live block device for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::block_device) -> &'a Self {
        // SAFETY: Transparent wrapper.
        unsafe { &*ptr.cast() }
    }

    /// Claims the device as loop.c does (`bd_prepare_to_claim`) for the duration of
    /// a configuration change: fails with `EBUSY` when someone holds it exclusively.
    pub(crate) fn prepare_claim(&self) -> Result<Claim<'_>> {
        // SAFETY: The bdev is live; the holder is a unique static address.
        to_result(unsafe {
            bindings::bd_prepare_to_claim(self.0.get(), claim_holder(), core::ptr::null())
        })?;
        Ok(Claim(self))
    }
}

static CLAIM_HOLDER: u8 = 0;
fn claim_holder() -> *mut ffi::c_void {
    (&raw const CLAIM_HOLDER).cast_mut().cast()
}

/// A pending claim of a block device; aborted on drop.
pub(crate) struct Claim<'a>(&'a Bdev);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // SAFETY: `prepare_claim` succeeded with the same holder.
        unsafe { bindings::bd_abort_claiming(self.0 .0.get(), claim_holder()) }
    }
}
