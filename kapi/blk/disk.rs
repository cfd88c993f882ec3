// SPDX-License-Identifier: GPL-2.0

//! Gendisks: an added disk and what the driver does with it (capacity, uevents,
//! partitions, freezing, limits).

use super::*;
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

/// A gendisk whose driver data is a `T`.
///
/// # Invariants
///
/// The wrapped gendisk was set up by [`Disk::add`]: its `private_data` and its
/// queue's `queuedata` are `Arc::into_raw` of the same `Arc<T>`, alive until
/// `free_disk`.
#[repr(transparent)]
pub(crate) struct Disk<T>(Opaque<bindings::gendisk>, PhantomData<T>);

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

    pub(super) fn raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    pub(super) fn queue(&self) -> *mut bindings::request_queue {
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
