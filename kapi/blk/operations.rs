// SPDX-License-Identifier: GPL-2.0

//! The callbacks of a disk: `DiskOps` (what the driver implements) and the C
//! tables and `extern "C"` functions that call it.

use super::*;
use crate::kapi::helpers::*;
use core::marker::PhantomData;
use kernel::{bindings, ffi, prelude::*, sync::Arc};

/// The operations of a disk; `Self` is the per-disk driver data.
pub(crate) trait DiskOps: Send + Sync + Sized + 'static {
    /// `open()` of the whole disk or a partition.
    fn open(this: &Self, disk: &Disk<Self>) -> Result;
    /// Last `close()` of an opener, with the disk's `open_mutex` held (`locked`).
    fn release(this: &Self, disk: &Disk<Self>, locked: &OpenLocked<'_>);
    /// A driver ioctl on the whole disk or a partition.
    fn ioctl(
        this: &Self,
        disk: &Disk<Self>,
        bdev: &Bdev,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        compat: bool,
    ) -> Result<i32>;
    /// A request to carry out. It has been started; the driver ends it. `last`:
    /// no further request follows right away in this batch.
    fn queue_rq(this: &Self, rq: Request<Self>, last: bool);
}

pub(super) struct Vtables<T>(PhantomData<T>);

impl<T: DiskOps> Vtables<T> {
    pub(super) const MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(queue_rq_callback::<T>),
        // Every other hook `None`.
        ..pin_init::zeroed()
    };
    pub(super) const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: crate::kapi::this_module(),
        open: Some(open_callback::<T>),
        release: Some(release_callback::<T>),
        ioctl: Some(ioctl_callback::<T>),
        compat_ioctl: Some(compat_ioctl_callback::<T>),
        free_disk: Some(free_disk_callback::<T>),
        ..pin_init::zeroed()
    };
}

/// # Safety
///
/// Called by blk-mq for a queue of a disk added by [`Disk::add`].
unsafe extern "C" fn queue_rq_callback<T: DiskOps>(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: `bd` and its request are valid for the call.
    let (rq, last) = unsafe { ((*bd).rq, (*bd).last) };
    // SAFETY: The request was handed to us by blk-mq.
    unsafe { bindings::blk_mq_start_request(rq) };
    // SAFETY: `queuedata` is the `Arc<T>` foreign pointer, alive while the queue is.
    let data: &T = unsafe { &*(*(*hctx).queue).queuedata.cast::<T>() };
    // SAFETY: blk-mq hands over a valid request, started above and owned by
    // nobody else; the driver ends it (or its `Drop` does).
    let rq = unsafe { Request::<T>::from_raw(rq) };
    T::queue_rq(data, rq, last);
    bindings::BLK_STS_OK as bindings::blk_status_t
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn open_callback<T: DiskOps>(
    disk: *mut bindings::gendisk,
    _mode: bindings::blk_mode_t,
) -> ffi::c_int {
    // SAFETY: The block core passes a live disk of ours.
    let disk = unsafe { Disk::<T>::from_raw(disk) };
    match T::open(disk.data(), disk) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn release_callback<T: DiskOps>(disk: *mut bindings::gendisk) {
    // SAFETY: The block core passes a live disk of ours.
    let disk = unsafe { Disk::<T>::from_raw(disk) };
    // `->release` runs with the disk's `open_mutex` held (`bdev_release`).
    T::release(disk.data(), disk, &OpenLocked(PhantomData))
}

/// # Safety
///
/// `bdev` is a live block device (the whole disk or a partition) of a disk set up
/// by [`Disk::add`] with driver data `T`, valid for the call.
unsafe fn ioctl_common<T: DiskOps>(
    bdev: *mut bindings::block_device,
    mode: u32,
    cmd: u32,
    arg: usize,
    compat: bool,
) -> ffi::c_int {
    // SAFETY: By the safety requirements `bdev` is a live bdev of one of our disks,
    // so its disk is too, for the call.
    let (disk, bdev) = unsafe {
        (
            Disk::<T>::from_raw(rust_loop_bdev_disk(bdev)),
            Bdev::from_raw(bdev),
        )
    };
    match T::ioctl(disk.data(), disk, bdev, OpenMode(mode), cmd, arg, compat) {
        Ok(v) => v,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn ioctl_callback<T: DiskOps>(
    bdev: *mut bindings::block_device,
    mode: bindings::blk_mode_t,
    cmd: ffi::c_uint,
    arg: ffi::c_ulong,
) -> ffi::c_int {
    // SAFETY: The block core passes a live bdev of one of our disks.
    unsafe { ioctl_common::<T>(bdev, mode, cmd, arg, false) }
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn compat_ioctl_callback<T: DiskOps>(
    bdev: *mut bindings::block_device,
    mode: bindings::blk_mode_t,
    cmd: ffi::c_uint,
    arg: ffi::c_ulong,
) -> ffi::c_int {
    // SAFETY: The block core passes a live bdev of one of our disks.
    unsafe { ioctl_common::<T>(bdev, mode, cmd, arg, true) }
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn free_disk_callback<T: DiskOps>(disk: *mut bindings::gendisk) {
    // SAFETY: `private_data` is the foreign `Arc<T>` set in `Disk::add`; this is the
    // last use of the disk, so ownership returns to us and the reference is dropped.
    drop(unsafe { Arc::<T>::from_raw((*disk).private_data.cast::<T>()) });
}
