// SPDX-License-Identifier: GPL-2.0

//! rust_loop: loop block devices, a drop-in for the in-tree `loop.ko`.
//!
//! This file is the crate root: the module, and the wiring of the block core's
//! callbacks to the files that serve them. `registry.rs` holds the device slots,
//! `device.rs` one device, `ioctl.rs` the user ABI, `transfer.rs` the file data
//! path, `bio_remap.rs` block-device backing, and `kapi` the abstraction layer over
//! the kernel's C API (all `unsafe` lives there).
//!
//! # Locking
//!
//! One order, outermost first (loop.c's, with the same roles):
//!
//! 1. `disk->open_mutex` (block core; held around `open`/`release`),
//! 2. `registry::VALIDATE` (binding on top of another loop device, `LOOP_CLR_FD`),
//! 3. `registry::REGISTRY` (the slot table; `loop_ctl_mutex`),
//! 4. `LoopDevice::state` (one device's configuration; `lo_mutex`),
//! 5. `LoopDevice::io` (irq-safe spinlock: the data path's view of the binding;
//!    direct I/O completions read it in interrupt context).
//! 6. `Workers::tenants` (irq-safe spinlock: a device's per-cgroup workers; a
//!    tenant's request is queued under it),
//! 7. `Worker::pending` (irq-safe spinlock).
//!
//! `del_gendisk` and partition rescans run with none of 2-5 held; the backing file
//! is released (`fput`) outside 4.
//!
//! # Slots cost little until used
//!
//! An unattached device is a gendisk and a small `LoopDevice`. All disks share one
//! tag set, so no requests are preallocated per device (loop.ko preallocates its
//! queue depth, 128, per device); the device's first worker (a work item) and its
//! queue are allocated by `LOOP_SET_FD`/`LOOP_CONFIGURE` and freed at detach, and a
//! cgroup's worker exists while that cgroup has I/O on the device (worker.rs).
//!
//! # Queue depth
//!
//! The shared tag set holds `hw_queue_depth` tags for `SHARED_DEPTH_DEVICES`
//! devices. The block layer shares it fairly among the queues that have requests
//! in flight (each of N busy queues may hold `depth / N`), so up to that many busy
//! devices each get loop.ko's per-device depth, a lone busy device gets more, and
//! idle or unattached devices hold none. (A queue is bound to its tag set when its
//! disk is made, and a set's depth cannot grow: a set per device would cost an
//! unattached device loop.ko's 128 preallocated requests.)

use device::{LoopDevice, Phase};
use kapi::blk::{Bdev, Disk, DiskOps, OpenLocked, OpenMode, Request};
use kapi::chrdev::{BlockMajor, ControlDevice};
use kernel::prelude::*;
use registry::{Devices, LoopProbe, StatsFile, MINORBITS};

mod bio_remap;
mod device;
mod ioctl;
mod kapi;
mod registry;
mod transfer;
mod worker;

module! {
    type: RustLoop,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loop block devices (drop-in for loop.ko), in Rust",
    license: "GPL",
    alias: ["devname:loop-control", "char-major-10-237", "block-major-7-*"],
}

/// `LOOP_CTRL_MINOR`.
const LOOP_CTRL_MINOR: u32 = 237;

/// The block core's callbacks for a loop disk.
impl DiskOps for LoopDevice {
    fn open(this: &Self, _disk: &Disk<Self>) -> Result {
        match this.phase() {
            Phase::Deleting | Phase::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    fn release(this: &Self, disk: &Disk<Self>, locked: &OpenLocked<'_>) {
        ioctl::release(this, disk, locked)
    }

    fn ioctl(
        this: &Self,
        disk: &Disk<Self>,
        bdev: &Bdev,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        compat: bool,
    ) -> Result<i32> {
        ioctl::device(this, disk, bdev, mode, cmd, arg, compat)
    }

    fn queue_rq(this: &Self, rq: Request<Self>, last: bool) {
        transfer::queue_rq(this, rq, last)
    }
}

struct Control;

impl kapi::chrdev::ControlOps for Control {
    fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
        ioctl::control(cmd, arg)
    }
}

/// The module. Fields drop in declaration order: the stats file, the control node
/// and the major go first, so that no new device can appear while `devices`
/// removes the existing ones.
struct RustLoop {
    _stats: Option<Pin<KBox<kernel::debugfs::File<StatsFile>>>>,
    _control: ControlDevice<Control>,
    _major: BlockMajor,
    _devices: Devices,
    _debugfs: kernel::debugfs::Dir,
}

impl kernel::Module for RustLoop {
    fn init(_module: &'static ThisModule) -> Result<Self> {
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
        // On an error below, what was made so far drops in reverse order.
        let devices = Devices::new(part_shift, depth)?;
        let control = ControlDevice::<Control>::register(c"loop-control", LOOP_CTRL_MINOR)
            .inspect_err(|e| {
                if *e == EBUSY {
                    pr_err!(
                        "misc minor 237 (loop-control) is taken: is loop.ko loaded? (rmmod loop)\n"
                    );
                }
            })?;
        let major =
            BlockMajor::register::<LoopProbe>(registry::LOOP_MAJOR, c"loop").map_err(|e| {
                pr_err!("block major 7 is taken: is loop.ko loaded? (rmmod loop)\n");
                if e == EBUSY {
                    EBUSY
                } else {
                    EIO
                }
            })?;
        devices.add_initial(max_loop.max(0) as u32);
        let debugfs = kernel::debugfs::Dir::new(c"rust_loop");
        let stats = KBox::pin_init(debugfs.read_only_file(c"stats", StatsFile), GFP_KERNEL).ok();
        pr_info!("module loaded (block major {})\n", major.major());
        Ok(RustLoop {
            _stats: stats,
            _control: control,
            _major: major,
            _devices: devices,
            _debugfs: debugfs,
        })
    }
}
