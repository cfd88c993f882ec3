// SPDX-License-Identifier: GPL-2.0

//! Block-device backing by bio remapping: each bio of a request is cloned (the
//! clone shares the original's pages and bvec table: zero copy), pointed at the
//! backing device with its sector shifted, and submitted, the way dm-linear does.
//! The request ends when the last clone completes, with the first error.
//!
//! Clones come from a per-device `bio_set` whose mempool reserve guarantees
//! progress when memory is short (allocation then waits for a clone to complete
//! instead of failing).

use super::blk::{DiskOps, Pdu, Request};
use super::file::BackingFile;
use crate::kapi::helpers::*;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    time::{Delta, Instant, Monotonic},
    types::Opaque,
};

/// Gets a request back when all its clones completed. May run in interrupt context.
pub(crate) trait RemapDone: DiskOps {
    /// `res`: `Ok` or the first clone's error; `at_backing`: the time from the
    /// submission of the first clone to the completion of the last.
    fn remap_done(rq: Request<Self>, res: Result, at_backing: Delta);
}

/// A pool of bios for clones, with a reserve.
///
/// # Invariants
///
/// `set` was initialised by `bioset_init` and is torn down in `drop`.
pub(crate) struct BioSet {
    set: Pin<KBox<Opaque<bindings::bio_set>>>,
    /// `GFP_NOIO`, read once (a macro the bindings do not carry).
    gfp: bindings::gfp_t,
}

// SAFETY: bio_sets are used from any context by the block layer.
unsafe impl Send for BioSet {}
// SAFETY: As above.
unsafe impl Sync for BioSet {}

impl BioSet {
    /// A bio_set for clones (no bvec pool: clones share the original's table).
    pub(crate) fn new() -> Result<Self> {
        let bs = KBox::pin(Opaque::<bindings::bio_set>::zeroed(), GFP_KERNEL)?;
        // SAFETY: `bs` is zeroed, pinned memory for a `bio_set`.
        to_result(unsafe { bindings::bioset_init(bs.get(), bindings::BIO_POOL_SIZE, 0, 0) })?;
        // INVARIANT: initialised above.
        Ok(Self {
            set: bs,
            // SAFETY: Returns a constant.
            gfp: unsafe { rust_loop_gfp_noio() },
        })
    }
}

impl Drop for BioSet {
    fn drop(&mut self) {
        // SAFETY: By the invariant the set is initialised; every clone from it has
        // completed (the device's queue was frozen before its binding was dropped).
        unsafe { bindings::bioset_exit(self.set.get()) }
    }
}

/// A request's remap state, in its PDU ([`Pdu`]).
#[repr(C)]
pub(crate) struct Remap {
    refs: AtomicU32,
    err: AtomicI64,
    /// When the first clone was submitted.
    start: Instant<Monotonic>,
}

/// The block device of a block-device backing file: only such a file makes one,
/// so the operations below cannot be called on a regular file.
///
/// # Invariants
///
/// `bdev` is `file_bdev` of an open block device file that outlives `'a`.
#[derive(Clone, Copy)]
pub(crate) struct BlockDevice<'a> {
    bdev: *mut bindings::block_device,
    _file: PhantomData<&'a BackingFile>,
}

impl BackingFile {
    /// The block device behind this file, if it is a block device file.
    pub(crate) fn block_device(&self) -> Option<BlockDevice<'_>> {
        // SAFETY: `self` is open; the helper returns `file_bdev` of a block device
        // file and NULL for any other file (one call: this is on the I/O path).
        let bdev = unsafe { rust_loop_file_bdev(self.raw()) };
        if bdev.is_null() {
            return None;
        }
        // INVARIANT: the block device of a block device file, open while `self` is
        // borrowed.
        Some(BlockDevice {
            bdev,
            _file: PhantomData,
        })
    }
}

impl BlockDevice<'_> {
    /// Whether the device's driver rings its doorbell once per batch of requests
    /// (`->commit_rqs`: virtio, NVMe, SCSI), so that bios submitted together under
    /// a plug cost one doorbell, and bios submitted one by one one each.
    pub(crate) fn commits_batches(&self) -> bool {
        // SAFETY: By the invariant the device is open, so its queue is live.
        unsafe { rust_loop_bdev_commits_batches(self.bdev) }
    }

    /// Stacks the device's queue limits (starting at `offset` bytes) onto `lim`, as
    /// device-mapper does (`blk_stack_limits`).
    pub(crate) fn stack_limits_onto(&self, lim: &mut super::blk::Limits, offset: u64) {
        // SAFETY: By the invariant the device is open, so its queue is live.
        unsafe {
            let b = rust_loop_bdev_limits(self.bdev);
            bindings::blk_stack_limits(lim.raw(), b, (offset >> 9) as bindings::sector_t);
            // The stacking baseline asks for 512-byte alignment; clones carry our
            // pages unchanged, so the backing device's own requirement is the one.
            (*lim.raw()).dma_alignment = (*b).dma_alignment;
        }
    }
}

impl<T: DiskOps> Request<T> {
    /// Number of bios in the request.
    pub(crate) fn bio_count(&self) -> u32 {
        let mut n = 0;
        // SAFETY: The bios of a started request are valid until it ends.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                n += 1;
                bio = (*bio).bi_next;
            }
        }
        n
    }
}

impl<T: RemapDone> Request<T> {
    /// Clones every bio of the request from `bs` onto `dev`, places each clone at
    /// `map_sector(its sector)` (the driver's mapping, as a device-mapper target's
    /// `map`), and submits it. The request ends, through
    /// [`RemapDone::remap_done`], when the last clone has, with the first error.
    pub(crate) fn remap(self, bs: &BioSet, dev: BlockDevice<'_>, map_sector: impl Fn(u64) -> u64) {
        // The request belongs to the `Remap` references until the last `put`.
        let rq = self.into_raw();
        let bdev = dev.bdev;
        // SAFETY: The PDU of a started request is ours until it ends; it is a `Pdu`
        // (the tag set's `cmd_size`). The bios of the request stay valid until it
        // ends, which happens only after the last clone completed. `bs` outlives
        // all clones (see `BioSet::drop`).
        unsafe {
            let st = Pdu::remap(rq);
            core::ptr::write(
                st,
                Remap {
                    refs: AtomicU32::new(1),
                    err: AtomicI64::new(0),
                    start: Instant::now(),
                },
            );
            let mut bio = (*rq).bio;
            while !bio.is_null() {
                let clone = bindings::bio_alloc_clone(bdev, bio, bs.gfp, bs.set.get());
                if clone.is_null() {
                    (*st)
                        .err
                        .store(i64::from(ENOMEM.to_errno()), Ordering::Relaxed);
                    break;
                }
                (*clone).bi_iter.bi_sector = map_sector((*clone).bi_iter.bi_sector);
                (*clone).bi_private = st.cast();
                (*clone).bi_end_io = Some(remap_end_io::<T>);
                (*st).refs.fetch_add(1, Ordering::Relaxed);
                bindings::submit_bio_noacct(clone);
                bio = (*bio).bi_next;
            }
            put::<T>(st);
        }
    }
}

/// # Safety
///
/// `clone` is a clone made by `remap`, completing.
unsafe extern "C" fn remap_end_io<T: RemapDone>(clone: *mut bindings::bio) {
    // SAFETY: `bi_private` is the request's `Remap`, alive while clones are out.
    unsafe {
        let st = (*clone).bi_private.cast::<Remap>();
        let status = (*clone).bi_status;
        if status != 0 {
            let e = bindings::blk_status_to_errno(status);
            let _ =
                (*st)
                    .err
                    .compare_exchange(0, i64::from(e), Ordering::Relaxed, Ordering::Relaxed);
        }
        bindings::bio_put(clone);
        put::<T>(st);
    }
}

/// # Safety
///
/// `st` is a live `Remap` of a request owned by the remap; the caller gives up
/// one reference.
unsafe fn put<T: RemapDone>(st: *mut Remap) {
    // SAFETY: `st` lives in the PDU until the request ends below.
    unsafe {
        if (*st).refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let e = (*st).err.load(Ordering::Relaxed);
        let at_backing = (*st).start.elapsed();
        let rq = Request::<T>::from_raw(Pdu::request(st));
        T::remap_done(
            rq,
            if e == 0 {
                Ok(())
            } else {
                Err(Error::from_errno(e as i32))
            },
            at_backing,
        );
    }
}
