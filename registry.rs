// SPDX-License-Identifier: GPL-2.0

//! The registry of device slots (loop.c's `loop_index_idr` under
//! `loop_ctl_mutex`): adding, finding and removing devices, the control ioctls,
//! the probe of `/dev/loopN` nodes, and the shared resources every device uses
//! (the tag set and the workqueue), which live from module load to unload.

use crate::device::{LoopDevice, Phase, State};
use crate::kapi;
use crate::kapi::blk::{Disk, DiskSpec, OwnedDisk, TagSet};
use crate::kapi::chrdev::Probe;
use crate::kapi::sync::{StaticLock, StaticMutex, StaticMutexGuard};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{prelude::*, sync::Arc};

/// `LOOP_MAJOR`.
pub(crate) const LOOP_MAJOR: u32 = 7;
/// Initial `max_hw_sectors` of an unattached device (loop.ko's value).
pub(crate) const LOOP_DEFAULT_MAX_SECTORS: u32 = 2560;
/// Busy devices that each get `hw_queue_depth` tags of the shared tag set at once
/// (see "Queue depth" in docs/ARCHITECTURE.md).
const SHARED_DEPTH_DEVICES: u32 = 16;
/// `MINORBITS`.
pub(crate) const MINORBITS: u32 = 20;

/// A slot in the registry: the device and the disk that serves it.
struct Slot {
    dev: Arc<LoopDevice>,
    disk: OwnedDisk<LoopDevice>,
}

/// The set of devices.
struct Registry {
    tag_set: Option<Arc<TagSet<LoopDevice>>>,
    wq: Option<Arc<kapi::wq::OwnedQueue>>,
    slots: KVec<Slot>,
    /// Numbers whose disk is being deleted (`LOOP_CTL_REMOVE` in progress): taken
    /// until `del_gendisk` is done, or a new `loopN` would collide in sysfs.
    removing: KVec<u32>,
    part_shift: u32,
}

/// The registry (`loop_ctl_mutex`).
static REGISTRY: StaticMutex<Registry> = StaticMutex::new(
    StaticLock::Ctl,
    Registry {
        tag_set: None,
        wq: None,
        slots: KVec::new(),
        removing: KVec::new(),
        part_shift: 0,
    },
);

/// Serialises binding on top of another loop device and `LOOP_CLR_FD`
/// (`loop_validate_mutex`).
static VALIDATE: StaticMutex<()> = StaticMutex::new(StaticLock::Validate, ());

/// Takes [`VALIDATE`].
pub(crate) fn validate_lock() -> StaticMutexGuard<'static, ()> {
    VALIDATE.lock()
}

impl Registry {
    fn find(&self, n: u32) -> Option<&Slot> {
        self.slots.iter().find(|s| s.dev.number == n)
    }

    /// Adds device `n`, or the lowest free number if `n` is `None`.
    fn add(&mut self, n: Option<u32>) -> Result<u32> {
        let taken = |i: u32| self.find(i).is_some() || self.removing.contains(&i);
        let n = match n {
            Some(n) => {
                if taken(n) {
                    return Err(EEXIST);
                }
                n
            }
            None => (0..).find(|i| !taken(*i)).ok_or(ENOSPC)?,
        };
        let first_minor = n.checked_shl(self.part_shift).ok_or(EINVAL)?;
        if first_minor >= (1 << MINORBITS) || (first_minor >> self.part_shift) != n {
            return Err(EINVAL);
        }
        let tag_set = self.tag_set.as_ref().ok_or(ENODEV)?;
        let dev = LoopDevice::new(n)?;
        self.slots.reserve(1, GFP_KERNEL)?;
        let spec = DiskSpec {
            major: LOOP_MAJOR,
            first_minor,
            minors: 1 << self.part_shift,
            suppress_part_scan: self.part_shift == 0,
            max_hw_sectors: LOOP_DEFAULT_MAX_SECTORS,
        };
        let disk = Disk::add(tag_set, dev.clone(), &spec, format_args!("loop{n}"))?;
        self.slots
            .push_within_capacity(Slot { dev, disk })
            .map_err(|_| ENOMEM)?;
        Ok(n)
    }
}

/// The registry's shared resources, from module load to unload: dropping this
/// removes every device, then frees the tag set and the workqueue.
pub(crate) struct Devices(());

impl Devices {
    /// Sets up the registry: partitions per device as `part_shift` says, and a
    /// shared tag set of `depth` tags per busy device.
    pub(crate) fn new(part_shift: u32, depth: u32) -> Result<Self> {
        let tag_set = Arc::new(
            TagSet::new(depth.saturating_mul(SHARED_DEPTH_DEVICES))?,
            GFP_KERNEL,
        )?;
        let wq = Arc::new(kapi::wq::OwnedQueue::new_shared()?, GFP_KERNEL)?;
        let mut reg = REGISTRY.lock();
        reg.part_shift = part_shift;
        PART_SHIFT.store(part_shift, Ordering::Relaxed);
        reg.tag_set = Some(tag_set);
        reg.wq = Some(wq);
        Ok(Self(()))
    }

    /// Adds devices `0..count` (best effort, as loop.ko: a failure leaves fewer).
    pub(crate) fn add_initial(&self, count: u32) {
        for i in 0..count {
            let _ = REGISTRY.lock().add(Some(i));
        }
    }
}

impl Drop for Devices {
    fn drop(&mut self) {
        // No device is bound (each binding holds a module reference), so every
        // slot can go. `del_gendisk` runs without the registry lock held.
        loop {
            let slot = REGISTRY.lock().slots.pop();
            match slot {
                Some(s) => s.disk.remove(),
                None => break,
            }
        }
        let mut reg = REGISTRY.lock();
        reg.tag_set = None;
        reg.wq = None;
        // The registry is a static, never dropped: free the vectors' buffers here or
        // they outlive the module (kmemleak found them).
        reg.slots = KVec::new();
        reg.removing = KVec::new();
    }
}

/// Part shift derived from `max_part` (loop.c: `fls(max_part)`); set once at load.
/// An atomic, not a registry field: it is read under device locks, which rank below
/// the registry lock.
static PART_SHIFT: AtomicU32 = AtomicU32::new(0);

/// See [`PART_SHIFT`].
pub(crate) fn part_shift() -> u32 {
    PART_SHIFT.load(Ordering::Relaxed)
}

/// `LOOP_CTL_ADD`: a negative number picks the lowest free one (as loop.c does).
pub(crate) fn ctl_add(n: i32) -> Result<u32> {
    REGISTRY.lock().add(u32::try_from(n).ok())
}

/// `LOOP_CTL_REMOVE` of a negative number was logged (`pr_warn_once`).
static REMOVE_ANY_WARNED: AtomicBool = AtomicBool::new(false);

/// `LOOP_CTL_REMOVE`.
pub(crate) fn ctl_remove(n: i32) -> Result<u32> {
    let Ok(n) = u32::try_from(n) else {
        // loop.ko's line, once per module load.
        if !REMOVE_ANY_WARNED.swap(true, Ordering::Relaxed) {
            kapi::warn_verbatim(format_args!(
                "deleting an unspecified loop device is not supported.\n"
            ));
        }
        return Err(EINVAL);
    };
    let mut reg = REGISTRY.lock();
    let idx = reg
        .slots
        .iter()
        .position(|s| s.dev.number == n)
        .ok_or(ENODEV)?;
    reg.removing.reserve(1, GFP_KERNEL)?;
    // The unbound state with the workers it keeps: freed below, without the locks.
    let unbound = {
        let slot = &reg.slots[idx];
        let mut st = slot.dev.state.lock();
        if st.phase() != Phase::Unbound || slot.disk.openers() > 0 {
            return Err(EBUSY);
        }
        core::mem::replace(&mut *st, State::Deleting)
    };
    let slot = reg.slots.remove(idx).map_err(|_| ENODEV)?;
    // Cannot fail: reserved above.
    let _ = reg.removing.push_within_capacity(n);
    drop(reg);
    drop(unbound);
    slot.disk.remove();
    REGISTRY.lock().removing.retain(|i| *i != n);
    Ok(0)
}

/// `LOOP_CTL_GET_FREE`: the first unbound device, else a new one.
pub(crate) fn ctl_get_free() -> Result<u32> {
    let mut reg = REGISTRY.lock();
    let free = reg
        .slots
        .iter()
        .filter(|s| s.dev.phase() == Phase::Unbound)
        .map(|s| s.dev.number)
        .min();
    match free {
        Some(n) => Ok(n),
        None => reg.add(None),
    }
}

/// The workqueue every device's worker runs on. Takes the registry lock: call it
/// before taking a device's lock.
pub(crate) fn shared_wq() -> Result<Arc<kapi::wq::OwnedQueue>> {
    REGISTRY.lock().wq.clone().ok_or(ENODEV)
}

/// Finds a device by the minor of one of its block device nodes.
pub(crate) fn device_by_minor(minor: u32) -> Option<Arc<LoopDevice>> {
    let reg = REGISTRY.lock();
    let n = minor >> reg.part_shift;
    reg.find(n).map(|s| s.dev.clone())
}

/// Opening `/dev/loopN` of a device that does not exist makes it (loop.c's
/// `loop_probe`).
pub(crate) struct LoopProbe;

impl Probe for LoopProbe {
    fn probe(minor: u32) {
        let mut reg = REGISTRY.lock();
        let n = minor >> reg.part_shift;
        // EEXIST (a race with another opener) and errors leave no trace: the open
        // then fails with ENXIO, as with loop.ko.
        let _ = reg.add(Some(n));
    }
}

/// `/sys/kernel/debug/rust_loop/stats`: the data path counters of every device,
/// one line each, so tests can check what a request moved (and that it moved once).
pub(crate) struct StatsFile;

impl kernel::debugfs::Writer for StatsFile {
    fn write(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let reg = REGISTRY.lock();
        for s in reg.slots.iter() {
            let st = &s.dev.stats;
            writeln!(
                f,
                "loop{} requests={} segments={} bytes={} inline={} workers={}",
                s.dev.number,
                st.requests.load(Ordering::Relaxed),
                st.segments.load(Ordering::Relaxed),
                st.bytes.load(Ordering::Relaxed),
                st.inline.load(Ordering::Relaxed),
                // The first worker and one per cgroup with I/O (0: unbound).
                s.dev.worker().map_or(0, |w| 1 + w.tenants())
            )?;
        }
        Ok(())
    }
}
