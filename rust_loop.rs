// SPDX-License-Identifier: GPL-2.0

//! rust_loop: loop block devices, a drop-in for the in-tree `loop.ko`.
//!
//! This file is the crate root: the module and the registry of device slots.
//! `device.rs` is one device, `ioctl.rs` the user ABI, `transfer.rs` the file data
//! path, `bio_remap.rs` block-device backing, and `kapi` the abstraction layer over
//! the kernel's C API (all `unsafe` lives there).
//!
//! # Locking
//!
//! One order, outermost first (loop.c's, with the same roles):
//!
//! 1. `disk->open_mutex` (block core; held around `open`/`release`),
//! 2. [`VALIDATE`] (binding on top of another loop device, `LOOP_CLR_FD`),
//! 3. [`REGISTRY`] (the slot table; `loop_ctl_mutex`),
//! 4. [`LoopDevice::state`] (one device's configuration; `lo_mutex`),
//! 5. [`LoopDevice::io`] (irq-safe spinlock: the data path's view of the binding;
//!    direct I/O completions read it in interrupt context).
//! 6. `Worker::pending` (irq-safe spinlock).
//!
//! `del_gendisk` and partition rescans run with none of 2-5 held; the backing file
//! is released (`fput`) outside 4.
//!
//! # Slots cost little until used
//!
//! An unattached device is a gendisk and a small `LoopDevice`. All disks share one
//! tag set, so no requests are preallocated per device (loop.ko preallocates its
//! queue depth, 128, per device); the per-device worker (a workqueue) and its queue
//! are allocated by `LOOP_SET_FD`/`LOOP_CONFIGURE` and freed at detach.
//!
//! # Queue depth
//!
//! The shared tag set holds `hw_queue_depth` tags for [`SHARED_DEPTH_DEVICES`]
//! devices. The block layer shares it fairly among the queues that have requests
//! in flight (each of N busy queues may hold `depth / N`), so up to that many busy
//! devices each get loop.ko's per-device depth, a lone busy device gets more, and
//! idle or unattached devices hold none. (A queue is bound to its tag set when its
//! disk is made, and a set's depth cannot grow: a set per device would cost an
//! unattached device loop.ko's 128 preallocated requests.)

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use device::{LoopDevice, Phase};
use kapi::blk::{Disk, DiskSpec, OwnedDisk, TagSet};
use kapi::chrdev::{BlockMajor, ControlDevice, Probe};
use kernel::{
    prelude::*,
    sync::{global_lock, Arc},
};

mod bio_remap;
mod device;
mod ioctl;
mod kapi;
mod transfer;

module! {
    type: RustLoop,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loop block devices (drop-in for loop.ko), in Rust",
    license: "GPL",
    alias: ["devname:loop-control", "char-major-10-237", "block-major-7-*"],
}

/// `LOOP_MAJOR`.
const LOOP_MAJOR: u32 = 7;
/// `LOOP_CTRL_MINOR`.
const LOOP_CTRL_MINOR: u32 = 237;
/// Initial `max_hw_sectors` of an unattached device (loop.ko's value).
const LOOP_DEFAULT_MAX_SECTORS: u32 = 2560;
/// Busy devices that each get `hw_queue_depth` tags of the shared tag set at once
/// (see "Queue depth" above).
const SHARED_DEPTH_DEVICES: u32 = 16;
/// `MINORBITS`.
const MINORBITS: u32 = 20;

/// A slot in the registry: the device and the disk that serves it.
struct Slot {
    dev: Arc<LoopDevice>,
    disk: OwnedDisk<LoopDevice>,
}

/// The set of devices.
pub(crate) struct Registry {
    tag_set: Option<Arc<TagSet<LoopDevice>>>,
    wq: Option<Arc<kapi::wq::OwnedQueue>>,
    slots: KVec<Slot>,
    /// Numbers whose disk is being deleted (`LOOP_CTL_REMOVE` in progress): taken
    /// until `del_gendisk` is done, or a new `loopN` would collide in sysfs.
    removing: KVec<u32>,
    part_shift: u32,
}

global_lock! {
    // SAFETY: Initialised in `RustLoop::init` before anything can use it.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry {
        tag_set: None,
        wq: None,
        slots: KVec::new(),
        removing: KVec::new(),
        part_shift: 0,
    };
}

global_lock! {
    // SAFETY: Initialised in `RustLoop::init` before anything can use it.
    unsafe(uninit) static VALIDATE: Mutex<()> = ();
}

/// Takes [`VALIDATE`].
pub(crate) fn validate_lock() -> kernel::sync::GlobalGuard<VALIDATE> {
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
    {
        let slot = &reg.slots[idx];
        let mut st = slot.dev.state.lock();
        if st.phase() != Phase::Unbound || slot.disk.openers() > 0 {
            return Err(EBUSY);
        }
        *st = ioctl::State::Deleting;
    }
    let slot = reg.slots.remove(idx).map_err(|_| ENODEV)?;
    // Cannot fail: reserved above.
    let _ = reg.removing.push_within_capacity(n);
    drop(reg);
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

struct LoopProbe;

impl Probe for LoopProbe {
    fn probe(minor: u32) {
        let mut reg = REGISTRY.lock();
        let n = minor >> reg.part_shift;
        // EEXIST (a race with another opener) and errors leave no trace: the open
        // then fails with ENXIO, as with loop.ko.
        let _ = reg.add(Some(n));
    }
}

struct Control;

impl kapi::chrdev::ControlOps for Control {
    fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
        ioctl::control(cmd, arg)
    }
}

/// `/sys/kernel/debug/rust_loop/stats`: the data path counters of every device,
/// one line each, so tests can check what a request moved (and that it moved once).
struct StatsFile;

impl kernel::debugfs::Writer for StatsFile {
    fn write(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let reg = REGISTRY.lock();
        for s in reg.slots.iter() {
            let st = &s.dev.stats;
            writeln!(
                f,
                "loop{} requests={} segments={} bytes={} inline={}",
                s.dev.number,
                st.requests.load(Ordering::Relaxed),
                st.segments.load(Ordering::Relaxed),
                st.bytes.load(Ordering::Relaxed),
                st.inline.load(Ordering::Relaxed)
            )?;
        }
        Ok(())
    }
}

struct RustLoop {
    // Drop order matters: the control node and the major go first, so that no new
    // device can appear while `drop` removes the existing ones.
    control: Option<ControlDevice<Control>>,
    major: Option<BlockMajor>,
    stats: Option<Pin<KBox<kernel::debugfs::File<StatsFile>>>>,
    _debugfs: kernel::debugfs::Dir,
}

impl kernel::Module for RustLoop {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called once, before anything else uses the locks.
        unsafe {
            REGISTRY.init();
            VALIDATE.init();
        }
        // loop.ko's checks: a negative max_part means none; the part shift must
        // leave room for max_loop devices.
        let max_part = kapi::params::max_part();
        let max_loop = kapi::params::max_loop();
        let depth = kapi::params::hw_queue_depth();
        let part_shift = if max_part > 0 {
            let shift = 32 - (max_part as u32).leading_zeros();
            kapi::params::set_max_part(((1u64 << shift) - 1) as i32);
            shift
        } else {
            0
        };
        if (1u32 << part_shift) > 256 || i64::from(max_loop) > 1i64 << (MINORBITS - part_shift) {
            return Err(EINVAL);
        }
        {
            let mut reg = REGISTRY.lock();
            reg.part_shift = part_shift;
            PART_SHIFT.store(part_shift, Ordering::Relaxed);
            let tag_set = Arc::new(
                TagSet::new(depth.saturating_mul(SHARED_DEPTH_DEVICES))?,
                GFP_KERNEL,
            )?;
            let wq = Arc::new(kapi::wq::OwnedQueue::new_shared()?, GFP_KERNEL)?;
            reg.tag_set = Some(tag_set);
            reg.wq = Some(wq);
        }
        let control = ControlDevice::<Control>::register(c"loop-control", LOOP_CTRL_MINOR)
            .inspect_err(|e| {
                if *e == EBUSY {
                    pr_err!(
                        "misc minor 237 (loop-control) is taken: is loop.ko loaded? (rmmod loop)\n"
                    );
                }
            });
        let control = match control {
            Ok(c) => c,
            Err(e) => {
                let mut reg = REGISTRY.lock();
                reg.tag_set = None;
                reg.wq = None;
                return Err(e);
            }
        };
        let major = match BlockMajor::register::<LoopProbe>(LOOP_MAJOR, c"loop") {
            Ok(m) => m,
            Err(e) => {
                pr_err!("block major 7 is taken: is loop.ko loaded? (rmmod loop)\n");
                drop(control);
                let mut reg = REGISTRY.lock();
                reg.tag_set = None;
                reg.wq = None;
                drop(reg);
                return Err(if e == EBUSY { EBUSY } else { EIO });
            }
        };
        for i in 0..max_loop.max(0) as u32 {
            // Best effort, as loop.ko: a failure here leaves fewer devices.
            let _ = REGISTRY.lock().add(Some(i));
        }
        let debugfs = kernel::debugfs::Dir::new(c"rust_loop");
        let stats = KBox::pin_init(debugfs.read_only_file(c"stats", StatsFile), GFP_KERNEL).ok();
        pr_info!("module loaded (block major {})\n", major.major());
        Ok(RustLoop {
            control: Some(control),
            major: Some(major),
            stats,
            _debugfs: debugfs,
        })
    }
}

impl Drop for RustLoop {
    fn drop(&mut self) {
        drop(self.stats.take());
        drop(self.control.take());
        drop(self.major.take());
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
