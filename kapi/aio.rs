// SPDX-License-Identifier: GPL-2.0

//! Asynchronous direct I/O from a request's pages to the backing file.
//!
//! The request's PDU holds the kiocb and, for a multi-bio request, the gathered
//! bvec table (the filesystem builds its bios on that table, so it must live until
//! completion). Two references, as loop.c: one for the submitter, one for the
//! completion; whoever drops the last hands the request back to the driver's
//! [`AioDone::aio_done`], which may run in interrupt context.

use super::blk::{Dir, DiskOps, Pdu, Request};
use super::file::BackingFile;
use crate::kapi::helpers::*;
use core::{
    mem::ManuallyDrop,
    sync::atomic::{AtomicI64, AtomicU32, Ordering},
};
use kernel::{bindings, ffi, prelude::*};

/// Gets a request back after its asynchronous I/O.
pub(crate) trait AioDone: DiskOps {
    /// `base`: bytes done before this I/O; `res`: bytes this I/O moved, or the
    /// error. May be called in interrupt context.
    fn aio_done(rq: Request<Self>, base: usize, res: Result<usize>);
}

/// A request's direct I/O state, in its PDU ([`Pdu`]).
#[repr(C)]
pub(crate) struct Cmd {
    kiocb: bindings::kiocb,
    refs: AtomicU32,
    res: AtomicI64,
    base: usize,
    write: bool,
    bvecs: ManuallyDrop<KVec<bindings::bio_vec>>,
}

const EIOCBQUEUED: isize = 529;

impl<T: AioDone> Request<T> {
    /// Starts direct I/O for the request from byte `base` on, at `pos` + `base` in
    /// `file`. With `nowait`, the submission does not block (`IOCB_NOWAIT`); a
    /// filesystem that would block answers `EAGAIN` through `aio_done`.
    pub(crate) fn submit_dio(
        self,
        file: &BackingFile,
        pos: u64,
        dir: Dir,
        base: usize,
        nowait: bool,
    ) {
        // SAFETY: The request is ours; it is handed to the PDU's references below
        // and ends only after the last of them, after this function used `it`.
        let mut it = match unsafe { Request::<T>::data_iter_raw(self.raw(), dir) } {
            Ok(it) => it,
            Err(e) => return T::aio_done(self, base, Err(e)),
        };
        it.advance(base);
        let write = dir == Dir::Source;
        let mut flags = super::file::iocb::DIRECT;
        if nowait {
            flags |= super::file::iocb::NOWAIT;
        }
        if write {
            flags |= super::file::iocb::WRITE;
        }
        let fp = file.raw();
        // From here on the request belongs to the PDU's references; the last `put`
        // rebuilds it.
        let rq = self.into_raw();
        // SAFETY: The PDU of a started request is ours until it ends; it is a
        // `Pdu` (the tag set's `cmd_size` is `Pdu::SIZE`). We initialise it
        // fully before use; the request (and so the PDU) is owned by the PDU's
        // references from here until `put` hands it back.
        unsafe {
            let cmd = Pdu::dio(rq);
            core::ptr::write(
                cmd,
                Cmd {
                    kiocb: pin_init::zeroed(),
                    refs: AtomicU32::new(2),
                    res: AtomicI64::new(0),
                    base,
                    write,
                    bvecs: ManuallyDrop::new(it.take_owned()),
                },
            );
            let k = &raw mut (*cmd).kiocb;
            rust_loop_init_sync_kiocb(k, fp);
            (*k).ki_flags = flags as ffi::c_int;
            (*k).ki_pos = (pos + base as u64) as bindings::loff_t;
            (*k).ki_complete = Some(complete::<T>);
            let fop = (*fp).f_op;
            let ret = if write {
                rust_loop_kiocb_start_write(k);
                match (*fop).write_iter {
                    Some(w) => w(k, it.raw()),
                    None => -(EINVAL.to_errno() as isize).abs(),
                }
            } else {
                match (*fop).read_iter {
                    Some(r) => r(k, it.raw()),
                    None => -(EINVAL.to_errno() as isize).abs(),
                }
            };
            if ret != -EIOCBQUEUED {
                complete::<T>(k, ret as ffi::c_long);
            }
            put::<T>(cmd);
        }
    }
}

/// # Safety
///
/// `kiocb` is the kiocb of a `Cmd` set up by `submit_dio`; called once.
unsafe extern "C" fn complete<T: AioDone>(kiocb: *mut bindings::kiocb, ret: ffi::c_long) {
    let cmd = kiocb.cast::<Cmd>();
    // SAFETY: `kiocb` is the first field of a live `Cmd` (repr(C)).
    unsafe {
        (*cmd).res.store(ret as i64, Ordering::Relaxed);
        put::<T>(cmd);
    }
}

/// # Safety
///
/// `cmd` is a live `Cmd` holding a reference that the caller gives up.
unsafe fn put<T: AioDone>(cmd: *mut Cmd) {
    // SAFETY: `cmd` is live until the last reference is dropped here.
    unsafe {
        if (*cmd).refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if (*cmd).write {
            rust_loop_kiocb_end_write(&raw mut (*cmd).kiocb);
        }
        ManuallyDrop::drop(&mut (*cmd).bvecs);
        let res = (*cmd).res.load(Ordering::Relaxed);
        let base = (*cmd).base;
        let rq = Request::<T>::from_raw(Pdu::request(cmd));
        let r = if res < 0 {
            Err(Error::from_errno(res as i32))
        } else {
            Ok(res as usize)
        };
        T::aio_done(rq, base, r);
    }
}
