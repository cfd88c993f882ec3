// SPDX-License-Identifier: GPL-2.0

//! Requests: a started request, owned by exactly one party until it ends.

use super::*;
use crate::kapi::helpers::*;
use core::{marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{bindings, ffi, prelude::*};

/// The per-request data area (blk-mq's PDU): the state a request keeps while it is
/// out in C. A request is in direct I/O or remapped, never both, so the two share
/// the space; the tag set sizes the PDU from this type (`cmd_size`).
#[repr(C)]
pub(crate) union Pdu {
    /// Direct I/O to the backing file (`kapi::aio`).
    dio: ManuallyDrop<crate::kapi::aio::Cmd>,
    /// Bio clones out at the backing device (`kapi::bio`).
    remap: ManuallyDrop<crate::kapi::bio::Remap>,
}

impl Pdu {
    /// The PDU's size, for the tag set.
    pub(crate) const SIZE: u32 = core::mem::size_of::<Pdu>() as u32;

    /// The direct I/O state in the PDU of `rq`.
    ///
    /// # Safety
    ///
    /// `rq` is a request of a tag set made with [`Pdu::SIZE`].
    pub(crate) unsafe fn dio(rq: *mut bindings::request) -> *mut crate::kapi::aio::Cmd {
        // SAFETY: By the caller's contract the PDU is a `Pdu`; a `repr(C)` union's
        // fields start at its start, and `ManuallyDrop` is `repr(transparent)`.
        unsafe { (&raw mut (*Self::of(rq)).dio).cast() }
    }

    /// The remap state in the PDU of `rq`.
    ///
    /// # Safety
    ///
    /// As [`Pdu::dio`].
    pub(crate) unsafe fn remap(rq: *mut bindings::request) -> *mut crate::kapi::bio::Remap {
        // SAFETY: As in `dio`.
        unsafe { (&raw mut (*Self::of(rq)).remap).cast() }
    }

    /// The PDU of `rq`: blk-mq places it right after the request
    /// (`blk_mq_rq_to_pdu`, computed here instead of called: this is on the I/O path).
    ///
    /// # Safety
    ///
    /// As [`Pdu::dio`].
    unsafe fn of(rq: *mut bindings::request) -> *mut Pdu {
        // SAFETY: By the caller's contract `rq` is a request of a tag set whose
        // `cmd_size` is a `Pdu`, which blk-mq allocates right after it.
        unsafe { rq.add(1).cast() }
    }

    /// The request whose PDU starts at `pdu` (`blk_mq_rq_from_pdu`).
    ///
    /// # Safety
    ///
    /// `pdu` points to the start of the PDU of a request of a tag set made with
    /// [`Pdu::SIZE`] (where `dio` and `remap` are).
    pub(crate) unsafe fn request<P>(pdu: *mut P) -> *mut bindings::request {
        // SAFETY: By the caller's contract the request lies right before its PDU.
        unsafe { pdu.cast::<bindings::request>().sub(1) }
    }
}

/// The operation of a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// Read into the request's pages.
    Read,
    /// Write from the request's pages.
    Write,
    /// Flush the volatile cache.
    Flush,
    /// Discard a range.
    Discard,
    /// Zero a range.
    WriteZeroes,
    /// Anything else (not supported by loop).
    Other,
}

/// Data direction of an iterator.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Data flows into the request's pages (a read).
    Dest,
    /// Data flows from the request's pages (a write).
    Source,
}

/// A started request that the driver must end exactly once.
///
/// # States and owners
///
/// - *Started*: `->queue_rq` makes the `Request` after `blk_mq_start_request`;
///   the driver owns it, moves it between its queues, and ends it with
///   [`Request::end`], which consumes it.
/// - *With C*: an asynchronous completion (direct I/O's `ki_complete`, a remap's
///   clones) takes it with [`Request::into_raw`]; only that completion rebuilds it
///   ([`Request::from_raw`]) and gives it back to the driver.
/// - A `Request` dropped without `end` is ended with an I/O error (and one
///   warning per module load): a lost request fails, it never hangs.
///
/// # Invariants
///
/// `ptr` is a request of a disk with driver data `T`, started by blk-mq
/// (`blk_mq_start_request`) and not yet ended, and this is its only owner.
pub(crate) struct Request<T: DiskOps> {
    ptr: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: A started request may be ended from any thread.
unsafe impl<T: DiskOps> Send for Request<T> {}

impl<T: DiskOps> Request<T> {
    pub(in crate::kapi) fn raw(&self) -> *mut bindings::request {
        self.ptr.as_ptr()
    }

    /// Takes back a request given to C with [`Request::into_raw`].
    ///
    /// # Safety
    ///
    /// `rq` is a non-null, started request of a disk with driver data `T`, not yet
    /// ended, and no `Request` owns it (it came from `into_raw` and is rebuilt once).
    pub(in crate::kapi) unsafe fn from_raw(rq: *mut bindings::request) -> Self {
        // INVARIANT: per the safety requirements.
        Self {
            // SAFETY: Non-null per the safety requirements.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        }
    }

    /// Hands the request to C for an asynchronous completion, which rebuilds it
    /// with [`Request::from_raw`]. Not ended here, and no longer dropped.
    pub(in crate::kapi) fn into_raw(self) -> *mut bindings::request {
        let rq = self.raw();
        core::mem::forget(self);
        rq
    }

    /// The driver data of the request's disk.
    pub(crate) fn data(&self) -> &T {
        // SAFETY: By the invariant the request belongs to a queue whose `queuedata`
        // is a live `Arc<T>`.
        unsafe { &*(*(*self.raw()).q).queuedata.cast::<T>() }
    }

    /// The disk the request was queued on.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: A request in flight belongs to a queue of a live disk of ours.
        unsafe { Disk::from_raw((*(*self.raw()).q).disk) }
    }

    /// Start, in bytes from the beginning of the device.
    pub(crate) fn pos(&self) -> u64 {
        // SAFETY: Plain field read of a live request.
        unsafe { (*self.raw()).__sector << 9 }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: Plain field read of a live request.
        unsafe { (*self.raw()).__data_len }
    }

    fn flags(&self) -> u32 {
        // SAFETY: Plain field read of a live request.
        unsafe { (*self.raw()).cmd_flags }
    }

    /// The operation.
    pub(crate) fn op(&self) -> Op {
        match self.flags() & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            _ => Op::Other,
        }
    }

    /// Write-zeroes must not unmap (deallocate) the range.
    pub(crate) fn no_unmap(&self) -> bool {
        self.flags() & (1 << bindings::req_flag_bits___REQ_NOUNMAP) != 0
    }

    /// Zeroes every page of the request (a read past the end of the backing file).
    pub(crate) fn zero_fill(&self) {
        // SAFETY: The request and its bios are live until it ends.
        unsafe { rust_loop_rq_zero_fill(self.raw()) }
    }

    /// An iterator over the request's own pages, for the backing file's
    /// `read_iter`/`write_iter`: the bvec table of a single-bio request is used in
    /// place; for several bios the bvec descriptors (not the data) are gathered into
    /// one array. Either way each segment is mapped exactly once.
    pub(crate) fn data_iter(&self, dir: Dir) -> Result<DataIter<'_>> {
        // SAFETY: The request is ours and stays alive while `self` is borrowed,
        // which the returned iterator does.
        unsafe { Self::data_iter_raw(self.raw(), dir) }
    }

    /// [`Request::data_iter`] for a request that is about to be handed to C.
    ///
    /// # Safety
    ///
    /// `rq` is a started request of ours that stays alive (not ended) while the
    /// iterator is used.
    pub(in crate::kapi) unsafe fn data_iter_raw<'a>(
        rq: *mut bindings::request,
        dir: Dir,
    ) -> Result<DataIter<'a>> {
        // SAFETY: The request is live per the safety requirements.
        let len = unsafe { (*rq).__data_len };
        // SAFETY: The request is live; counting walks only the bvec descriptors.
        let nr = unsafe { rust_loop_rq_bvecs(rq, core::ptr::null_mut()) };
        let mut offset: ffi::c_uint = 0;
        // SAFETY: As above.
        let single = unsafe { rust_loop_rq_single_bvecs(rq, &mut offset) };
        let mut owned = KVec::new();
        let table = if single.is_null() {
            owned = KVec::<bindings::bio_vec>::with_capacity(nr as usize, GFP_KERNEL)?;
            // SAFETY: `owned` has room for `nr` entries, which the helper writes.
            unsafe {
                let n = rust_loop_rq_bvecs(rq, owned.as_mut_ptr());
                owned.inc_len(n as usize);
            }
            offset = 0;
            owned.as_mut_ptr()
        } else {
            single
        };
        let d = if dir == Dir::Source {
            bindings::ITER_SOURCE
        } else {
            bindings::ITER_DEST
        };
        let mut iter = core::mem::MaybeUninit::<bindings::iov_iter>::uninit();
        // SAFETY: `table` holds `nr` bvecs that stay valid while the request and
        // `owned` live, which the returned iterator borrows. `iov_iter_bvec`
        // assigns the whole struct (a compound literal), so it is initialised after.
        let iter = unsafe {
            bindings::iov_iter_bvec(iter.as_mut_ptr(), d, table, nr as usize, len as usize);
            let mut iter = iter.assume_init();
            iter.iov_offset = offset as usize;
            iter
        };
        Ok(DataIter {
            iter,
            _owned: owned,
            nr_segs: nr,
            _rq: PhantomData,
        })
    }

    /// Ends the request with `res` (an errno maps to its `blk_status_t`).
    pub(crate) fn end(self, res: Result) {
        let status = match res {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            // SAFETY: Pure mapping function.
            Err(e) => unsafe { bindings::errno_to_blk_status(e.to_errno()) },
        };
        let rq = self.into_raw();
        // SAFETY: By the invariant the request is started and not ended, and we
        // were its only owner (consumed above), so it is ended exactly once.
        unsafe { bindings::blk_mq_end_request(rq, status) };
    }
}

/// A request was dropped unended (warned once per module load).
static DROPPED_WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

impl<T: DiskOps> Drop for Request<T> {
    fn drop(&mut self) {
        if !DROPPED_WARNED.swap(true, core::sync::atomic::Ordering::Relaxed) {
            pr_warn!("a request was dropped without being ended; it fails with EIO\n");
        }
        // SAFETY: By the invariant the request is started, not ended, and ours;
        // `end` and `into_raw` forget `self`, so this is the only end.
        unsafe {
            let status = bindings::errno_to_blk_status(EIO.to_errno());
            bindings::blk_mq_end_request(self.raw(), status)
        };
    }
}
