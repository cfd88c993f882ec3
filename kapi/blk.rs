// SPDX-License-Identifier: GPL-2.0

//! Disks, the tag set, requests and queue limits.
//!
//! 7.3's `kernel::block::mq` builds a gendisk without `open`/`release`/`ioctl`
//! hooks, without a major, and without any way to change capacity or limits after
//! `add_disk`, so loop cannot use it. This module is the same idea with those parts:
//! a disk's driver data is an `Arc<T>` owned by the gendisk (dropped in `free_disk`),
//! and the blk-mq and block-device callbacks hand the driver `&T`, `&Disk<T>` and an
//! owned, started `Request<T>` that must be ended exactly once.

use crate::kapi::helpers::*;
use core::{fmt, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi,
    prelude::*,
    sync::Arc,
    types::Opaque,
};

/// How a block device was opened (`blk_mode_t`).
#[derive(Clone, Copy)]
pub(crate) struct OpenMode(u32);

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

/// A gendisk whose driver data is a `T`.
///
/// # Invariants
///
/// The wrapped gendisk was set up by [`Disk::add`]: its `private_data` and its
/// queue's `queuedata` are `Arc::into_raw` of the same `Arc<T>`, alive until
/// `free_disk`.
#[repr(transparent)]
pub(crate) struct Disk<T>(Opaque<bindings::gendisk>, PhantomData<T>);

/// Proof that the disk's `open_mutex` is held: only the block core's `release`
/// call hands one out, for its duration.
pub(crate) struct OpenLocked<'a>(PhantomData<&'a ()>);

/// A block device (the whole disk or a partition) on which an ioctl arrived.
#[repr(transparent)]
pub(crate) struct Bdev(Opaque<bindings::block_device>);

/// An added disk owned by the driver's registry; dropping it (or
/// [`OwnedDisk::remove`]) deletes it. It holds its tag set, which therefore
/// outlives its queue whatever order owners drop things in.
///
/// # Invariants
///
/// `ptr` is a disk added by [`Disk::add`] with `tag_set`, on which this handle
/// holds the reference returned by `blk_mq_alloc_disk`.
pub(crate) struct OwnedDisk<T: DiskOps> {
    ptr: NonNull<bindings::gendisk>,
    // Dropped after `drop` deleted the disk (fields drop after the body).
    _tag_set: Arc<TagSet<T>>,
}

// SAFETY: A gendisk can be used from any thread; the handle is a counted reference.
unsafe impl<T: DiskOps> Send for OwnedDisk<T> {}
// SAFETY: All methods through `&` go to `Disk<T>`, which is `Sync`.
unsafe impl<T: DiskOps> Sync for OwnedDisk<T> {}
// SAFETY: The block core synchronises its own state; our methods only call functions
// that may be called concurrently, or are serialised by the driver's device mutex.
unsafe impl<T: DiskOps> Sync for Disk<T> {}
// SAFETY: As above.
unsafe impl<T: DiskOps> Send for Disk<T> {}

impl<T: DiskOps> core::ops::Deref for OwnedDisk<T> {
    type Target = Disk<T>;
    fn deref(&self) -> &Disk<T> {
        // SAFETY: By the invariant the disk is alive while this handle exists.
        unsafe { Disk::from_raw(self.ptr.as_ptr()) }
    }
}

impl<T: DiskOps> OwnedDisk<T> {
    /// Deletes the disk (the same as dropping it; says so where it happens). Call
    /// without driver locks that `open`/`release` take: `del_gendisk` waits for
    /// them.
    pub(crate) fn remove(self) {
        drop(self);
    }
}

impl<T: DiskOps> Drop for OwnedDisk<T> {
    /// `del_gendisk` + `put_disk`: the node disappears and the queue leaves the tag
    /// set; the driver data is dropped once the last opener is gone (`free_disk`).
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr();
        // SAFETY: By the invariant `ptr` is an added disk and we own a reference,
        // given up here exactly once.
        unsafe {
            bindings::del_gendisk(ptr);
            bindings::put_disk(ptr);
        }
    }
}

/// The blk-mq tag set shared by every disk of the driver.
///
/// Sharing it is what keeps an unattached device cheap: its queue has no requests
/// of its own preallocated (loop.ko preallocates 128 per device).
///
/// # Invariants
///
/// `set` was initialised by `blk_mq_alloc_tag_set` and is freed in `drop`.
pub(crate) struct TagSet<T: DiskOps> {
    set: Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>,
    _p: PhantomData<fn() -> T>,
}

// SAFETY: The tag set is used by the block core from any thread; we only pass it on.
unsafe impl<T: DiskOps> Send for TagSet<T> {}
// SAFETY: As above.
unsafe impl<T: DiskOps> Sync for TagSet<T> {}

struct Vtables<T>(PhantomData<T>);

impl<T: DiskOps> Vtables<T> {
    const MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(queue_rq_callback::<T>),
        // Every other hook `None`.
        ..pin_init::zeroed()
    };
    const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: super::this_module(),
        open: Some(open_callback::<T>),
        release: Some(release_callback::<T>),
        ioctl: Some(ioctl_callback::<T>),
        compat_ioctl: Some(compat_ioctl_callback::<T>),
        free_disk: Some(free_disk_callback::<T>),
        ..pin_init::zeroed()
    };
}

impl<T: DiskOps> TagSet<T> {
    /// One hardware queue of `depth` tags; `queue_rq` may sleep (`BLK_MQ_F_BLOCKING`)
    /// because the fast path tries the backing file without a hand-off.
    pub(crate) fn new(depth: u32) -> Result<Self> {
        let set = KBox::pin(Opaque::<bindings::blk_mq_tag_set>::zeroed(), GFP_KERNEL)?;
        let p = set.get();
        // SAFETY: `p` is a zeroed, pinned tag set that outlives the call.
        let ret = unsafe {
            (*p).ops = &Vtables::<T>::MQ_OPS;
            (*p).nr_hw_queues = 1;
            (*p).nr_maps = 1;
            (*p).queue_depth = depth;
            (*p).numa_node = bindings::NUMA_NO_NODE;
            (*p).cmd_size = super::aio::PDU_SIZE;
            (*p).flags = bindings::BLK_MQ_F_STACKING
                | bindings::BLK_MQ_F_BLOCKING
                | bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
            bindings::blk_mq_alloc_tag_set(p)
        };
        to_result(ret)?;
        // INVARIANT: allocated above.
        Ok(Self {
            set,
            _p: PhantomData,
        })
    }
}

impl<T: DiskOps> Drop for TagSet<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant the set is allocated. Every disk made with it
        // holds an `Arc` of it until its `del_gendisk` (which takes the queue off
        // the set) is done, so no queue uses the set any more.
        unsafe { bindings::blk_mq_free_tag_set(self.set.get()) };
    }
}

/// Parameters of a new disk.
pub(crate) struct DiskSpec {
    /// Block major.
    pub(crate) major: u32,
    /// First minor.
    pub(crate) first_minor: u32,
    /// Number of minors (1 + partitions).
    pub(crate) minors: u32,
    /// Suppress partition scans until the driver allows them.
    pub(crate) suppress_part_scan: bool,
    /// `max_hw_sectors` until the device is configured.
    pub(crate) max_hw_sectors: u32,
}

impl<T: DiskOps> Disk<T> {
    /// # Safety
    ///
    /// `ptr` is a live gendisk set up by [`Disk::add`] with driver data `T`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `Disk<T>` is a transparent wrapper of `gendisk`.
        unsafe { &*ptr.cast() }
    }

    fn raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    fn queue(&self) -> *mut bindings::request_queue {
        // SAFETY: By the invariant the disk is live and has a queue.
        unsafe { rust_loop_disk_queue(self.raw()) }
    }

    /// Allocates and adds a disk named `name` whose driver data is `data`.
    pub(crate) fn add(
        tag_set: &Arc<TagSet<T>>,
        data: Arc<T>,
        spec: &DiskSpec,
        name: fmt::Arguments<'_>,
    ) -> Result<OwnedDisk<T>> {
        // Zero: the block core fills in its defaults.
        let mut lim: bindings::queue_limits = pin_init::zeroed();
        lim.max_hw_sectors = spec.max_hw_sectors;
        lim.logical_block_size = 512;
        lim.physical_block_size = 512;
        lim.io_min = 512;
        let foreign = Arc::into_raw(data).cast_mut().cast::<ffi::c_void>();
        // SAFETY: The tag set is allocated (type invariant); `lim` is valid for the
        // call; the lock class is static.
        let ptr = unsafe {
            bindings::__blk_mq_alloc_disk(
                tag_set.set.get(),
                &mut lim,
                foreign.cast(),
                kernel::static_lock_class!().as_ptr(),
            )
        };
        let disk = match from_err_ptr(ptr) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: `foreign` came from `into_foreign` above and was not used.
                drop(unsafe { Arc::<T>::from_raw(foreign.cast()) });
                return Err(e);
            }
        };
        let mut writer = NameWriter {
            buf: [0; 32],
            len: 0,
        };
        let name_ok = fmt::write(&mut writer, name).is_ok() && writer.len < 32;
        // SAFETY: `disk` is a freshly allocated gendisk we own; nothing else sees it yet.
        unsafe {
            (*disk).major = spec.major as ffi::c_int;
            (*disk).first_minor = spec.first_minor as ffi::c_int;
            (*disk).minors = spec.minors as ffi::c_int;
            (*disk).fops = &Vtables::<T>::FOPS;
            (*disk).private_data = foreign.cast();
            (*disk).events = bindings::DISK_EVENT_MEDIA_CHANGE as u16;
            (*disk).event_flags = bindings::DISK_EVENT_FLAG_UEVENT as u16;
            let n = writer.len.min(31);
            for (i, b) in writer.buf[..n].iter().enumerate() {
                (*disk).disk_name[i] = *b as ffi::c_char;
            }
            (*disk).disk_name[n] = 0;
            rust_loop_disk_set_suppress_part_scan(disk, spec.suppress_part_scan);
        }
        let ret = if name_ok {
            // SAFETY: `disk` is fully set up; no groups are attached at add time.
            unsafe { bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut()) }
        } else {
            EINVAL.to_errno()
        };
        if ret != 0 {
            // SAFETY: `add_disk` failed, so `free_disk` will not run: drop the driver
            // data ourselves, then the allocation reference.
            unsafe {
                drop(Arc::<T>::from_raw(foreign.cast()));
                bindings::put_disk(disk);
            }
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: added above; we hold the allocation reference.
        Ok(OwnedDisk {
            ptr: NonNull::new(disk).ok_or(ENOMEM)?,
            _tag_set: tag_set.clone(),
        })
    }

    /// The driver data.
    pub(crate) fn data(&self) -> &T {
        // SAFETY: By the invariant `private_data` is a live `Arc<T>` foreign pointer.
        unsafe { &*(*self.raw()).private_data.cast::<T>() }
    }

    /// Sets the capacity and tells user space (`RESIZE=1` uevent when both the old
    /// and the new size are non-zero, as `set_capacity_and_notify` does).
    pub(crate) fn set_capacity_notify(&self, sectors: u64) -> bool {
        // SAFETY: The disk is live.
        unsafe { bindings::set_capacity_and_notify(self.raw(), sectors) }
    }

    /// Sets the capacity without a uevent.
    pub(crate) fn set_capacity(&self, sectors: u64) {
        // SAFETY: The disk is live.
        unsafe { bindings::set_capacity(self.raw(), sectors) }
    }

    /// `set_disk_ro`.
    pub(crate) fn set_read_only(&self, ro: bool) {
        // SAFETY: The disk is live.
        unsafe { bindings::set_disk_ro(self.raw(), ro) }
    }

    /// Number of openers of the whole disk and its partitions.
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: The disk is live; `disk_openers` is an atomic read.
        unsafe { rust_loop_disk_openers(self.raw()) }
    }

    /// Allows or suppresses partition scans (`GD_SUPPRESS_PART_SCAN`).
    pub(crate) fn suppress_part_scan(&self, on: bool) {
        // SAFETY: The disk is live; the flag is an atomic bit.
        unsafe { rust_loop_disk_set_suppress_part_scan(self.raw(), on) }
    }

    /// Suppresses or resumes uevents of the disk device.
    pub(crate) fn suppress_uevents(&self, on: bool) {
        // SAFETY: The disk is live.
        unsafe { rust_loop_disk_set_uevent_suppress(self.raw(), on) }
    }

    /// Sends a plain `change` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: The disk is live; its device kobject is registered.
        unsafe {
            bindings::kobject_uevent(
                rust_loop_disk_kobj(self.raw()),
                bindings::kobject_action_KOBJ_CHANGE,
            )
        };
    }

    /// `disk_force_media_change`: new diskseq, `DISK_MEDIA_CHANGE=1` uevent.
    pub(crate) fn force_media_change(&self) {
        // SAFETY: The disk is live.
        unsafe { bindings::disk_force_media_change(self.raw()) }
    }

    /// The disk's device kobject (for attribute groups).
    pub(crate) fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: The disk is live.
        unsafe { rust_loop_disk_kobj(self.raw()) }
    }

    /// Rescans partitions (`bdev_disk_changed` under the disk's `open_mutex`).
    pub(crate) fn rescan_partitions(&self) -> Result {
        let d = self.raw();
        // SAFETY: The disk is live; `bdev_disk_changed` wants `open_mutex`, which
        // we take (the caller does not hold it: holders get an `OpenLocked`).
        let ret = unsafe {
            bindings::mutex_lock(&raw mut (*d).open_mutex);
            let r = bindings::bdev_disk_changed(d, false);
            bindings::mutex_unlock(&raw mut (*d).open_mutex);
            r
        };
        to_result(ret)
    }

    /// Rescans partitions from `release`, which runs with `open_mutex` held.
    pub(crate) fn rescan_partitions_locked(&self, _locked: &OpenLocked<'_>) -> Result {
        // SAFETY: The disk is live and `_locked` proves `open_mutex` is held.
        to_result(unsafe { bindings::bdev_disk_changed(self.raw(), false) })
    }

    /// `sync_blockdev` + `invalidate_bdev` of the whole disk: what the page cache
    /// of /dev/loopN holds is written and dropped before the mapping changes.
    pub(crate) fn sync_and_invalidate(&self) {
        // SAFETY: The disk is live and so is its whole-disk bdev.
        unsafe {
            let bdev = (*self.raw()).part0;
            bindings::sync_blockdev(bdev);
            bindings::invalidate_bdev(bdev);
        }
    }

    /// Freezes the queue: no request is in flight until the guard is dropped.
    pub(crate) fn freeze(&self) -> Frozen<'_, T> {
        // SAFETY: The queue is live.
        let memflags = unsafe { rust_loop_freeze(self.queue()) };
        Frozen {
            disk: self,
            memflags,
        }
    }

    /// Reads the queue limits, lets `f` change them, and commits them (validated by
    /// the block core; an error leaves the old limits in place).
    pub(crate) fn update_limits(&self, f: impl FnOnce(&mut Limits)) -> Result {
        let q = self.queue();
        // SAFETY: The queue is live; `start_update` takes the limits lock that
        // `commit_update` releases.
        let mut lim = Limits(unsafe { rust_loop_limits_start_update(q) });
        f(&mut lim);
        // SAFETY: The limits lock is held since `start_update`.
        to_result(unsafe { bindings::queue_limits_commit_update(q, &mut lim.0) })
    }

    /// Like [`Self::update_limits`], freezing the queue around the commit.
    pub(crate) fn update_limits_frozen(&self, f: impl FnOnce(&mut Limits)) -> Result {
        let q = self.queue();
        // SAFETY: As in `update_limits`; `commit_update_frozen` freezes the queue.
        let mut lim = Limits(unsafe { rust_loop_limits_start_update(q) });
        f(&mut lim);
        // SAFETY: The limits lock is held since `start_update`.
        to_result(unsafe { bindings::queue_limits_commit_update_frozen(q, &mut lim.0) })
    }
}

/// A frozen queue; unfreezes on drop.
pub(crate) struct Frozen<'a, T: DiskOps> {
    disk: &'a Disk<T>,
    memflags: u32,
}

impl<T: DiskOps> Drop for Frozen<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The queue was frozen by `Disk::freeze` with these memflags.
        unsafe { rust_loop_unfreeze(self.disk.queue(), self.memflags) }
    }
}

/// `struct queue_limits`, being updated.
pub(crate) struct Limits(bindings::queue_limits);

/// Queue feature bits (`BLK_FEAT_*`).
pub(crate) mod feat {
    /// Volatile write cache: flushes are meaningful.
    pub(crate) const WRITE_CACHE: u32 = 1 << 0;
    /// Forced unit access.
    pub(crate) const FUA: u32 = 1 << 1;
    /// Rotational medium.
    pub(crate) const ROTATIONAL: u32 = 1 << 2;
    /// I/O accounting (`/proc/diskstats`, `queue/iostats`).
    pub(crate) const IO_STAT: u32 = 1 << 4;
    /// `REQ_NOWAIT` bios are taken.
    pub(crate) const NOWAIT: u32 = 1 << 7;
}

impl Limits {
    pub(super) fn raw(&mut self) -> *mut bindings::queue_limits {
        &mut self.0
    }

    /// Starts from the permissive limits of a stacking driver
    /// (`blk_set_stacking_limits`), keeping the given logical block size floor.
    pub(crate) fn reset_for_stacking(&mut self) {
        // SAFETY: `self.0` is a valid `queue_limits`.
        unsafe { bindings::blk_set_stacking_limits(&mut self.0) }
    }

    /// Starts from all-zero limits: the block core fills in its defaults for
    /// whatever is left zero when the limits are committed.
    pub(crate) fn reset_to_defaults(&mut self) {
        self.0 = pin_init::zeroed();
    }

    /// The feature bits set now.
    pub(crate) fn features(&self) -> u32 {
        self.0.features
    }

    /// Logical block size.
    pub(crate) fn logical_block_size(&self) -> u32 {
        self.0.logical_block_size
    }

    /// Largest request, in sectors.
    pub(crate) fn set_max_hw_sectors(&mut self, s: u32) {
        self.0.max_hw_sectors = s;
    }

    /// Logical = physical = minimum I/O size = `bs`.
    pub(crate) fn set_block_size(&mut self, bs: u32) {
        self.0.logical_block_size = bs;
        self.0.physical_block_size = bs;
        self.0.io_min = bs;
    }
    /// Sets or clears feature bits.
    pub(crate) fn set_features(&mut self, bits: u32, on: bool) {
        if on {
            self.0.features |= bits;
        } else {
            self.0.features &= !bits;
        }
    }
    /// Discard and write-zeroes limits (0 = not supported).
    pub(crate) fn set_discard(&mut self, max_sectors: u32, granularity: u32, write_zeroes: u32) {
        self.0.max_hw_discard_sectors = max_sectors;
        self.0.max_user_discard_sectors = u32::MAX;
        self.0.discard_granularity = granularity;
        self.0.max_write_zeroes_sectors = write_zeroes;
    }
    /// Switches discard off.
    pub(crate) fn clear_discard(&mut self) {
        self.0.max_hw_discard_sectors = 0;
        self.0.discard_granularity = 0;
    }
    /// Switches write-zeroes off.
    pub(crate) fn clear_write_zeroes(&mut self) {
        self.0.max_write_zeroes_sectors = 0;
    }
    /// DMA alignment mask.
    pub(crate) fn set_dma_alignment(&mut self, mask: u32) {
        self.0.dma_alignment = mask;
    }
}

impl Bdev {
    /// # Safety
    ///
    /// `ptr` is a live block device for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::block_device) -> &'a Self {
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
    without_plug(|| T::queue_rq(data, rq, last));
    bindings::BLK_STS_OK as bindings::blk_status_t
}

impl<T: DiskOps> Request<T> {
    pub(super) fn raw(&self) -> *mut bindings::request {
        self.ptr.as_ptr()
    }

    /// Takes back a request given to C with [`Request::into_raw`].
    ///
    /// # Safety
    ///
    /// `rq` is a non-null, started request of a disk with driver data `T`, not yet
    /// ended, and no `Request` owns it (it came from `into_raw` and is rebuilt once).
    pub(super) unsafe fn from_raw(rq: *mut bindings::request) -> Self {
        // INVARIANT: per the safety requirements.
        Self {
            // SAFETY: Non-null per the safety requirements.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        }
    }

    /// Hands the request to C for an asynchronous completion, which rebuilds it
    /// with [`Request::from_raw`]. Not ended here, and no longer dropped.
    pub(super) fn into_raw(self) -> *mut bindings::request {
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
    pub(super) unsafe fn data_iter_raw<'a>(
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

/// An `iov_iter` over a request's pages.
pub(crate) struct DataIter<'a> {
    iter: bindings::iov_iter,
    _owned: KVec<bindings::bio_vec>,
    nr_segs: u32,
    _rq: PhantomData<&'a ()>,
}

impl DataIter<'_> {
    /// Number of bvec segments the iterator covers.
    pub(crate) fn segments(&self) -> u32 {
        self.nr_segs
    }
    /// Skips `n` bytes (already transferred).
    pub(crate) fn advance(&mut self, n: usize) {
        if n > 0 {
            // SAFETY: The iterator is valid; `iov_iter_advance` clamps to its count.
            unsafe { bindings::iov_iter_advance(&mut self.iter, n) }
        }
    }

    /// Takes the gathered bvec table (empty for a single-bio request), which must
    /// outlive asynchronous I/O that uses this iterator's pages.
    pub(super) fn take_owned(&mut self) -> KVec<bindings::bio_vec> {
        core::mem::take(&mut self._owned)
    }

    pub(super) fn raw(&mut self) -> *mut bindings::iov_iter {
        &mut self.iter
    }
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

fn ioctl_common<T: DiskOps>(
    bdev: *mut bindings::block_device,
    mode: u32,
    cmd: u32,
    arg: usize,
    compat: bool,
) -> ffi::c_int {
    // SAFETY: The block core passes a live bdev of one of our disks.
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
    ioctl_common::<T>(bdev, mode, cmd, arg, false)
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
    ioctl_common::<T>(bdev, mode, cmd, arg, true)
}

/// # Safety
///
/// Called by the block core for a disk set up by [`Disk::add`].
unsafe extern "C" fn free_disk_callback<T: DiskOps>(disk: *mut bindings::gendisk) {
    // SAFETY: `private_data` is the foreign `Arc<T>` set in `Disk::add`; this is the
    // last use of the disk, so ownership returns to us and the reference is dropped.
    drop(unsafe { Arc::<T>::from_raw((*disk).private_data.cast::<T>()) });
}

struct NameWriter {
    buf: [u8; 32],
    len: usize,
}

impl fmt::Write for NameWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.len >= self.buf.len() {
                return Err(fmt::Error);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

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
