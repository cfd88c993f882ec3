// SPDX-License-Identifier: GPL-2.0

//! The user ABI: the `/dev/loopN` ioctls, `/dev/loop-control`, sysfs, and the
//! attach/detach state machine, with loop.ko's errnos (Linux 7.3 `loop.c`).
//!
//! Every ioctl validates everything it can before it changes anything, so a
//! failing call leaves the device exactly as it was (loop.c 7.3 does not after
//! line 1077 of `loop_configure`, nor in `LOOP_CHANGE_FD`'s uevent).

use crate::bio_remap::can_remap;
use crate::device::{Binding, Config, LoopDevice, State, Workers};
use crate::kapi::bio::BioSet;
use crate::kapi::blk::{feat, Bdev, Disk, OpenLocked, OpenMode};
use crate::kapi::file::{BackingFile, FileKind};
use crate::kapi::sysfs::{LoopAttr, LoopAttrs};
use crate::kapi::uapi::{
    cmd, flags, CompatLoopInfo, LoopConfig, LoopInfo, LoopInfo64, LO_CRYPT_CRYPTOAPI,
    LO_CRYPT_NONE, LO_CRYPT_XOR, LO_KEY_SIZE, LO_NAME_SIZE,
};
use crate::kapi::{capable_sys_admin, errno, warn_verbatim, ModuleRef};
use crate::registry;
use crate::transfer::write_cache_feature;
use core::fmt;
use kernel::{
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

/// `BLK_MAX_BLOCK_SIZE` without large folios: `PAGE_SIZE`.
const MAX_BLOCK_SIZE: u32 = kernel::page::PAGE_SIZE as u32;

/// Device size in bytes: the file's size less the offset, clamped to `sizelimit`.
pub(crate) fn device_bytes(file_size: u64, offset: u64, sizelimit: u64) -> u64 {
    let size = file_size.saturating_sub(offset);
    if sizelimit > 0 && sizelimit < size {
        sizelimit
    } else {
        size
    }
}

/// Device size in 512-byte sectors (loop.c `lo_calculate_size`): the partial
/// sector of [`device_bytes`] dropped.
pub(crate) fn size_sectors(file_size: u64, offset: u64, sizelimit: u64) -> u64 {
    device_bytes(file_size, offset, sizelimit) >> 9
}

/// [`check_block_size`], with the warning the block layer logs for a size it
/// refuses: loop.ko hands any block size to the queue limits, whose validation
/// (`blk_validate_limits`) prints this line and fails with EINVAL.
fn valid_block_size(bs: u32) -> Result<u32> {
    check_block_size(bs).inspect_err(|_| {
        // `%d` of an unsigned int in C: sizes above `i32::MAX` print negative.
        warn_verbatim(format_args!("Invalid logical block size ({})\n", bs as i32));
    })
}

/// Block size checks loop.ko's queue-limit validation makes: 0 picks the default;
/// else a power of two from 512 to `PAGE_SIZE`.
pub(crate) fn check_block_size(bs: u32) -> Result<u32> {
    if bs == 0 {
        return Ok(0);
    }
    if !bs.is_power_of_two() || !(512..=MAX_BLOCK_SIZE).contains(&bs) {
        return Err(EINVAL);
    }
    Ok(bs)
}

/// `loop_set_status_from_info`'s checks.
pub(crate) fn check_info(info: &LoopInfo64) -> Result {
    if info.lo_encrypt_key_size as usize > LO_KEY_SIZE {
        return Err(EINVAL);
    }
    match info.lo_encrypt_type {
        LO_CRYPT_NONE => {}
        LO_CRYPT_XOR => {
            warn_verbatim(format_args!(
                "support for the xor transformation has been removed.\n"
            ));
            return Err(EINVAL);
        }
        LO_CRYPT_CRYPTOAPI => {
            warn_verbatim(format_args!(
                "support for cryptoloop has been removed.  Use dm-crypt instead.\n"
            ));
            return Err(EINVAL);
        }
        _ => return Err(EINVAL),
    }
    if info.lo_offset > i64::MAX as u64 || info.lo_sizelimit > i64::MAX as u64 {
        return Err(EOVERFLOW);
    }
    Ok(())
}

/// Legacy `struct loop_info` to `loop_info64` (sizelimit 0, as loop.c).
pub(crate) fn info_from_old(old: &LoopInfo) -> LoopInfo64 {
    let mut i = LoopInfo64::zeroed();
    i.lo_number = old.lo_number as u32;
    i.lo_device = old.lo_device;
    i.lo_inode = old.lo_inode;
    i.lo_rdevice = old.lo_rdevice;
    i.lo_offset = i64::from(old.lo_offset) as u64;
    i.lo_encrypt_key_size = old.lo_encrypt_key_size as u32;
    i.lo_flags = old.lo_flags as u32;
    i.lo_file_name = old.lo_name;
    i
}

/// `loop_info64` to legacy `struct loop_info`; EOVERFLOW when a field does not fit.
pub(crate) fn info_to_old(i: &LoopInfo64) -> Result<LoopInfo> {
    let offset = i32::try_from(i.lo_offset).map_err(|_| EOVERFLOW)?;
    Ok(LoopInfo {
        lo_number: i.lo_number as i32,
        pad0: 0,
        lo_device: i.lo_device,
        lo_inode: i.lo_inode,
        lo_rdevice: i.lo_rdevice,
        lo_offset: offset,
        lo_encrypt_type: i.lo_encrypt_type as i32,
        lo_encrypt_key_size: i.lo_encrypt_key_size as i32,
        lo_flags: i.lo_flags as i32,
        lo_name: i.lo_file_name,
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
        reserved: [0; 8],
    })
}

/// A 32-bit caller's `compat_loop_info` to `loop_info64` (`loop_info64_from_compat`:
/// unlike the native legacy call, the key size is not carried over).
pub(crate) fn info_from_compat(old: &CompatLoopInfo) -> LoopInfo64 {
    let mut i = LoopInfo64::zeroed();
    i.lo_number = old.lo_number as u32;
    i.lo_device = old.lo_device.into();
    i.lo_inode = old.lo_inode.into();
    i.lo_rdevice = old.lo_rdevice.into();
    i.lo_offset = i64::from(old.lo_offset) as u64;
    i.lo_flags = old.lo_flags as u32;
    i.lo_file_name = old.lo_name;
    i
}

/// `loop_info64` to a 32-bit caller's `compat_loop_info` (`loop_info64_to_compat`):
/// EOVERFLOW when the device numbers, inode or offset do not fit.
pub(crate) fn info_to_compat(i: &LoopInfo64) -> Result<CompatLoopInfo> {
    Ok(CompatLoopInfo {
        lo_number: i.lo_number as i32,
        lo_device: u16::try_from(i.lo_device).map_err(|_| EOVERFLOW)?,
        pad0: 0,
        lo_inode: u32::try_from(i.lo_inode).map_err(|_| EOVERFLOW)?,
        lo_rdevice: u16::try_from(i.lo_rdevice).map_err(|_| EOVERFLOW)?,
        pad1: 0,
        lo_offset: i32::try_from(i.lo_offset).map_err(|_| EOVERFLOW)?,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: i.lo_flags as i32,
        lo_name: i.lo_file_name,
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
        reserved: [0; 4],
    })
}

fn read_user<T: kernel::transmute::FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .reader()
        .read::<T>()
}

fn write_user<T: kernel::transmute::AsBytes>(arg: usize, v: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .writer()
        .write(v)
}

/// `LOOP_SET_STATUS{,64}`: the caller's struct `U`, converted to `loop_info64`;
/// `legacy` for the old `loop_info` calls (native or compat). The caller checked
/// that the opener may write.
fn set_status_as<U: kernel::transmute::FromBytes>(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    arg: usize,
    legacy: bool,
    conv: impl FnOnce(&U) -> LoopInfo64,
) -> Result<i32> {
    let u: U = read_user(arg)?;
    set_status(dev, disk, &conv(&u), legacy)
}

/// `LOOP_GET_STATUS{,64}`: the status converted to the caller's struct `U`.
fn get_status_as<U: kernel::transmute::AsBytes>(
    dev: &LoopDevice,
    arg: usize,
    conv: impl FnOnce(&LoopInfo64) -> Result<U>,
) -> Result<i32> {
    if arg == 0 {
        return Err(EINVAL);
    }
    let i = get_status(dev)?;
    write_user(arg, &conv(&i)?)?;
    Ok(0)
}

/// `/dev/loop-control` ioctls.
pub(crate) fn control(cmd: u32, arg: usize) -> Result<isize> {
    let n = arg as i32;
    match cmd {
        cmd::LOOP_CTL_ADD => registry::ctl_add(n).map(|v| v as isize),
        cmd::LOOP_CTL_REMOVE => registry::ctl_remove(n).map(|v| v as isize),
        cmd::LOOP_CTL_GET_FREE => registry::ctl_get_free().map(|v| v as isize),
        _ => Err(errno::enosys()),
    }
}

/// `/dev/loopN` ioctls. `compat` calls (32-bit callers, `lo_compat_ioctl`) have the
/// same layout on x86-64 except the legacy `loop_info`, which is converted from and to
/// `compat_loop_info`; a number the compat entry does not know is ENOTTY there.
pub(crate) fn device(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    bdev: &Bdev,
    mode: OpenMode,
    cmd: u32,
    arg: usize,
    compat: bool,
) -> Result<i32> {
    let may_write = || {
        if mode.write() || capable_sys_admin() {
            Ok(())
        } else {
            Err(EPERM)
        }
    };
    match cmd {
        cmd::LOOP_SET_FD => {
            let mut c = LoopConfig {
                fd: arg as u32,
                block_size: 0,
                info: LoopInfo64::zeroed(),
                reserved: [0; 8],
            };
            c.fd = arg as u32;
            configure(dev, disk, bdev, mode, &c)
        }
        cmd::LOOP_CONFIGURE => {
            let c: LoopConfig = read_user(arg)?;
            configure(dev, disk, bdev, mode, &c)
        }
        cmd::LOOP_CHANGE_FD => change_fd(dev, disk, arg as u32),
        cmd::LOOP_CLR_FD => clr_fd(dev, disk),
        cmd::LOOP_SET_STATUS if compat => {
            may_write()?;
            set_status_as(dev, disk, arg, true, info_from_compat)
        }
        cmd::LOOP_GET_STATUS if compat => get_status_as(dev, arg, info_to_compat),
        cmd::LOOP_SET_STATUS => {
            may_write()?;
            set_status_as(dev, disk, arg, true, info_from_old)
        }
        cmd::LOOP_GET_STATUS => get_status_as(dev, arg, info_to_old),
        cmd::LOOP_SET_STATUS64 => {
            may_write()?;
            set_status_as(dev, disk, arg, false, |i: &LoopInfo64| *i)
        }
        cmd::LOOP_GET_STATUS64 => get_status_as(dev, arg, |i| Ok(*i)),
        cmd::LOOP_SET_CAPACITY => {
            may_write()?;
            set_capacity(dev, disk)
        }
        cmd::LOOP_SET_DIRECT_IO => {
            may_write()?;
            set_dio(dev, disk, arg != 0)
        }
        cmd::LOOP_SET_BLOCK_SIZE => {
            may_write()?;
            set_block_size(dev, disk, bdev, mode, arg)
        }
        // `lo_compat_ioctl` answers -ENOIOCTLCMD for the rest, without locking.
        _ if compat => Err(ENOTTY),
        _ => {
            // loop.c takes lo_mutex and answers EINVAL (not ENOTTY).
            let _st = dev.state.lock();
            Err(EINVAL)
        }
    }
}

/// The backing file must be readable, and writable through `write_iter` if it
/// was opened for writing (`loop_check_backing_file`).
fn check_backing_file(file: &BackingFile) -> Result {
    if !file.has_io_ops(file.writable()) {
        return Err(EINVAL);
    }
    Ok(())
}

/// `loop_validate_file`: walk down a stack of loop devices; a cycle back to `dev`
/// is EBADF, an unbound link EINVAL; the bottom must be a regular file or a block
/// device. Called with `registry::VALIDATE` held.
fn validate_file(dev: &LoopDevice, file: &BackingFile) -> Result {
    let mut f = file.clone();
    loop {
        match f.kind() {
            FileKind::Regular => return Ok(()),
            FileKind::Block(major, minor) if major == registry::LOOP_MAJOR => {
                let Some(lower) = registry::device_by_minor(minor) else {
                    return Err(EINVAL);
                };
                if lower.number == dev.number {
                    return Err(EBADF);
                }
                let st = lower.state.lock();
                let next = st.bound().map_err(|_| EINVAL)?.file.clone();
                drop(st);
                f = next;
            }
            FileKind::Block(..) => return Ok(()),
            FileKind::Other => return Err(EINVAL),
        }
    }
}

/// Whether direct I/O can be used for `file` at `offset` with block size `bs`
/// (`lo_can_use_dio`): the file supports O_DIRECT and the block size and offset
/// are multiples of the file's direct I/O offset alignment.
fn can_use_dio(file: &BackingFile, offset: u64, bs: u32) -> bool {
    let min = dio_min_size(file);
    file.can_direct() && bs >= min && offset % u64::from(min) == 0
}

/// The smallest direct I/O unit of `file` (`lo_min_dio_size`; at least a sector).
fn dio_min_size(file: &BackingFile) -> u32 {
    file.dio_alignment().offset.max(512)
}

/// The device's DMA alignment mask (`loop_set_dma_limit`): with direct I/O the
/// request's pages go to the backing file as they are, so its memory alignment
/// (`STATX_DIOALIGN`'s, not its block size) applies; never below a sector's.
fn dma_alignment(file: &BackingFile, dio: bool) -> u32 {
    if dio {
        file.dio_alignment().mem_mask.max(511)
    } else {
        511
    }
}

/// Default block size (`loop_default_blocksize`).
fn default_block_size(file: &BackingFile, dio: bool) -> u32 {
    if dio {
        dio_min_size(file)
    } else {
        512
    }
}

/// Sets the size and tells user space (`loop_set_size`): a `RESIZE=1` change
/// uevent for a real change between non-zero sizes, else a plain change uevent,
/// also when the size stayed the same (udev re-reads the device on it).
fn set_size(disk: &Disk<LoopDevice>, sectors: u64) {
    if !disk.set_capacity_notify(sectors) {
        disk.uevent_change();
    }
}

fn calc_size(file: &BackingFile, offset: u64, sizelimit: u64) -> u64 {
    size_sectors(file.size(), offset, sizelimit)
}

/// Sets the queue limits of a bound device (`loop_update_limits`). A remapped
/// block device passes its own limits on (stacked as device-mapper does: block
/// sizes, max sectors, segments, alignment, discard, write zeroes, write cache,
/// FUA, rotational), so producers can submit the largest I/O it takes. A file gets
/// loop.ko's limits (512-byte or requested blocks, 1.25 MiB requests, discard via
/// fallocate in units of the filesystem's block size).
fn apply_limits(
    disk: &Disk<LoopDevice>,
    file: &BackingFile,
    bs: u32,
    read_only: bool,
    dio: bool,
    remap_offset: Option<u64>,
) -> Result {
    let rot = file.underlying_bdev().map(|(_, r)| r).unwrap_or(false);
    // Discard punches holes of the filesystem's block size (`loop_get_discard_config`).
    let discard = match file.kind() {
        FileKind::Regular if file.has_fallocate() => file.fs_block_size(),
        _ => None,
    };
    let wc = write_cache_feature(file, read_only);
    let dma = dma_alignment(file, dio);
    disk.update_limits(|l| {
        // I/O accounting is on from the start, as on loop.ko, and stays as the
        // user set it through sysfs (`queue/iostats`).
        let keep = l.features() & (feat::IO_STAT | feat::NOWAIT);
        if let (Some(offset), Some(dev)) = (remap_offset, file.block_device()) {
            l.reset_for_stacking();
            l.set_features(keep & feat::IO_STAT, true);
            dev.stack_limits_onto(l, offset);
            if bs > l.logical_block_size() {
                l.set_block_size(bs);
            }
            if read_only {
                l.set_features(feat::WRITE_CACHE | feat::FUA, false);
            }
            return;
        }
        l.reset_to_defaults();
        l.set_features(keep, true);
        l.set_max_hw_sectors(registry::LOOP_DEFAULT_MAX_SECTORS);
        l.set_block_size(bs);
        l.set_features(wc, true);
        l.set_features(feat::ROTATIONAL, rot);
        if let Some(granularity) = discard {
            l.set_discard(u32::MAX >> 9, granularity, u32::MAX >> 9);
        } else {
            l.set_discard(0, 0, 0);
        }
        l.set_dma_alignment(dma);
    })
}

/// A clone pool if `file` at `offset` is remapped (reusing `have`).
fn remap_pool(
    file: &BackingFile,
    offset: u64,
    have: &Option<Arc<BioSet>>,
) -> Result<Option<Arc<BioSet>>> {
    if !can_remap(file, offset) {
        return Ok(None);
    }
    match have {
        Some(p) => Ok(Some(p.clone())),
        None => Ok(Some(crate::bio_remap::new_pool()?)),
    }
}

fn configure(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    bdev: &Bdev,
    mode: OpenMode,
    c: &LoopConfig,
) -> Result<i32> {
    let file = BackingFile::from_fd(c.fd)?;
    check_backing_file(&file)?;
    // Taken before any lock that ranks below the registry's.
    let wq = registry::shared_wq()?;
    let _validate = registry::validate_lock();
    // Exclusive holders (a mounted filesystem) keep the device from changing.
    let _claim = if mode.exclusive() {
        None
    } else {
        Some(bdev.prepare_claim()?)
    };
    // loop.c answers EBUSY before it looks at the file. The walk takes other devices'
    // state locks and the registry, so it runs without ours (lock order); VALIDATE
    // keeps every binding in place meanwhile, and the phase is checked again after.
    if !matches!(*dev.state.lock(), State::Unbound(_)) {
        return Err(EBUSY);
    }
    validate_file(dev, &file)?;
    let mut st = dev.state.lock();
    let State::Unbound(spare) = &mut *st else {
        return Err(EBUSY);
    };
    // The last binding's workers (`hw_queue_depth` is read-only after load).
    let spare = spare.take();
    let info = &c.info;
    if info.lo_flags & !flags::CONFIGURE_SETTABLE != 0 {
        return Err(EINVAL);
    }
    check_info(info)?;
    let bs_req = valid_block_size(c.block_size)?;

    // Everything is validated; work out the effective configuration.
    let read_only = info.lo_flags & flags::READ_ONLY != 0 || !file.writable() || !mode.write();
    let want_dio = info.lo_flags & flags::DIRECT_IO != 0 || file.opened_direct();
    let bs = if bs_req != 0 {
        bs_req
    } else {
        default_block_size(&file, want_dio && file.can_direct())
    };
    let dio = want_dio && can_use_dio(&file, info.lo_offset, bs);
    let mut lo_flags = info.lo_flags & !(flags::READ_ONLY | flags::DIRECT_IO);
    if read_only {
        lo_flags |= flags::READ_ONLY;
    }
    if dio {
        lo_flags |= flags::DIRECT_IO;
    }
    if registry::part_shift() > 0 {
        lo_flags |= flags::PARTSCAN;
    }
    let worker = match spare {
        Some(w) => w,
        None => Workers::new(wq, crate::kapi::params::hw_queue_depth() as usize)?,
    };
    let remap = remap_pool(&file, info.lo_offset, &None)?;
    let binding = Arc::new(
        Binding::new(
            file.clone(),
            info.lo_offset,
            read_only,
            dio,
            worker.clone(),
            remap.clone(),
        ),
        GFP_KERNEL,
    )?;

    // Apply. Only the limits commit can still fail, and it is undone completely.
    disk.suppress_uevents(true);
    let remap_offset = remap.as_ref().map(|_| info.lo_offset);
    if let Err(e) = apply_limits(disk, &file, bs, read_only, dio, remap_offset) {
        disk.suppress_uevents(false);
        return Err(e);
    }
    disk.force_media_change();
    disk.set_read_only(read_only);
    let gfp = file.restrict_gfp();
    let _ = file.fsync();
    let _ = disk.add_loop_attrs();
    // Uevents are suppressed here: the one change event follows below.
    set_size(disk, calc_size(&file, info.lo_offset, info.lo_sizelimit));
    // Unbound until now: there is no old binding to drop.
    drop(dev.set_binding(Some(binding)));
    let mut name = info.lo_file_name;
    name[LO_NAME_SIZE - 1] = 0;
    *st = State::Bound(Config {
        file,
        offset: info.lo_offset,
        sizelimit: info.lo_sizelimit,
        flags: lo_flags,
        block_size: bs,
        file_name: name,
        gfp,
        worker,
        remap,
        _module: ModuleRef::get(),
    });
    let partscan = lo_flags & flags::PARTSCAN != 0;
    if partscan {
        disk.suppress_part_scan(false);
    }
    disk.suppress_uevents(false);
    disk.uevent_change();
    drop(st);
    if partscan {
        reread_partitions(dev, disk, &name);
    }
    Ok(0)
}

/// Scans the partition table after a change (`loop_reread_partitions`), with
/// loop.ko's log line on failure (blktests greps it for `rc=-16`). `name` is the
/// configured file name. Called without the device lock.
fn reread_partitions(dev: &LoopDevice, disk: &Disk<LoopDevice>, name: &[u8; LO_NAME_SIZE]) {
    if let Err(e) = disk.rescan_partitions() {
        let n = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        warn_verbatim(format_args!(
            "loop_reread_partitions: partition scan of loop{} ({}) failed (rc={})\n",
            dev.number,
            core::str::from_utf8(&name[..n]).unwrap_or("?"),
            e.to_errno()
        ));
    }
}

/// Tears a bound device down (`__loop_clr_fd`). Called from `release`, with the
/// disk's `open_mutex` held (`locked`).
fn detach(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    mut st: kernel::sync::MutexGuard<'_, State>,
    locked: &OpenLocked<'_>,
) {
    // Unbound from here for anyone who takes the lock after us.
    let cfg = match core::mem::replace(&mut *st, State::Unbound(None)) {
        State::Rundown(c) => c,
        other => {
            *st = other;
            return;
        }
    };
    if disk.openers() == 0 {
        // The final close (`lo_release`): nobody can submit I/O any more and
        // `bdev_release` has written back and waited for what was in flight, so no
        // freeze (loop.ko does not freeze here either; a freeze waits for an RCU
        // grace period, most of a detach's time). The worker is drained all the same.
        drop(dev.set_binding(None));
        cfg.worker.quiesce();
    } else {
        let frozen = disk.freeze();
        let old = dev.set_binding(None);
        cfg.worker.quiesce();
        drop(frozen);
        drop(old);
    }
    // Drained and no binding holds them: kept for the next attach.
    *st = State::Unbound(Some(cfg.worker.clone()));
    disk.remove_loop_attrs();
    let _ = disk.update_limits(|l| l.set_block_size(512));
    cfg.file.restore_gfp(cfg.gfp);
    disk.set_capacity(0);
    // loop.ko leaves the disk read-only until the next read-write attach.
    disk.set_read_only(false);
    disk.uevent_change();
    disk.force_media_change();
    drop(st);
    // Every partition goes, also those added with BLKPG (`partx -a`) without
    // partscan: a stale loopNp1 would map onto the next, unrelated binding.
    if let Err(e) = disk.rescan_partitions_locked(locked) {
        warn_verbatim(format_args!(
            "__loop_clr_fd: partition scan of loop{} failed (rc={})\n",
            dev.number,
            e.to_errno()
        ));
    }
    if registry::part_shift() == 0 {
        disk.suppress_part_scan(true);
    }
    // The file reference, the clone pool and the module reference go here,
    // outside the device lock.
    drop(cfg);
}

fn clr_fd(dev: &LoopDevice, disk: &Disk<LoopDevice>) -> Result<i32> {
    let _validate = registry::validate_lock();
    let mut st = dev.state.lock();
    st.bound_mut()?.flags |= flags::AUTOCLEAR;
    // With other openers (a mount, udev) this is a lazy detach: teardown at the
    // last close, as loop.ko.
    if disk.openers() == 1 {
        st.run_down();
    }
    Ok(0)
}

/// Last close of an opener (`lo_release`).
pub(crate) fn release(dev: &LoopDevice, disk: &Disk<LoopDevice>, locked: &OpenLocked<'_>) {
    if disk.openers() > 0 {
        return;
    }
    let mut st = dev.state.lock();
    if st.bound().is_ok_and(|c| c.flags & flags::AUTOCLEAR != 0) {
        st.run_down();
    }
    if matches!(*st, State::Rundown(_)) {
        detach(dev, disk, st, locked);
    }
}

fn get_status(dev: &LoopDevice) -> Result<LoopInfo64> {
    let st = dev.state.lock();
    let c = st.bound()?;
    let mut i = LoopInfo64::zeroed();
    i.lo_number = dev.number;
    i.lo_offset = c.offset;
    i.lo_sizelimit = c.sizelimit;
    i.lo_flags = c.flags;
    i.lo_file_name = c.file_name;
    let file = c.file.clone();
    drop(st);
    let s = file.stat()?;
    i.lo_device = s.dev;
    i.lo_inode = s.ino;
    i.lo_rdevice = s.rdev;
    Ok(i)
}

fn set_status(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    info: &LoopInfo64,
    legacy: bool,
) -> Result<i32> {
    let mut st = dev.state.lock();
    // loop.c's legacy path ignores the encryption fields (loop-abi.md 20.3).
    if !legacy {
        check_info(info)?;
    } else if info.lo_offset > i64::MAX as u64 {
        return Err(EOVERFLOW);
    }
    let c = st.bound_mut()?;
    let size_changed = c.offset != info.lo_offset || c.sizelimit != info.lo_sizelimit;
    let new_partscan = info.lo_flags & flags::PARTSCAN != 0 && c.flags & flags::PARTSCAN == 0;
    // Direct I/O stays only where the new offset still allows it; remapping only
    // where the new offset is aligned. Allocate before changing anything.
    let dio = c.flags & flags::DIRECT_IO != 0 && can_use_dio(&c.file, info.lo_offset, c.block_size);
    let remap = remap_pool(&c.file, info.lo_offset, &c.remap)?;
    let b = Arc::new(
        Binding::new(
            c.file.clone(),
            info.lo_offset,
            c.flags & flags::READ_ONLY != 0,
            dio,
            c.worker.clone(),
            remap.clone(),
        ),
        GFP_KERNEL,
    )?;
    if size_changed {
        disk.sync_and_invalidate();
    }
    let old_binding;
    {
        let _frozen = disk.freeze();
        c.offset = info.lo_offset;
        c.sizelimit = info.lo_sizelimit;
        c.file_name = info.lo_file_name;
        c.file_name[LO_NAME_SIZE - 1] = 0;
        c.flags &= !flags::SET_STATUS_CLEARABLE;
        c.flags |= info.lo_flags & flags::SET_STATUS_SETTABLE;
        if !dio {
            c.flags &= !flags::DIRECT_IO;
        }
        c.remap = remap;
        old_binding = dev.set_binding(Some(b));
    }
    drop(old_binding);
    if new_partscan {
        disk.suppress_part_scan(false);
    }
    if size_changed {
        set_size(disk, calc_size(&c.file, c.offset, c.sizelimit));
    }
    let name = c.file_name;
    drop(st);
    if new_partscan {
        reread_partitions(dev, disk, &name);
    }
    Ok(0)
}

fn set_capacity(dev: &LoopDevice, disk: &Disk<LoopDevice>) -> Result<i32> {
    let st = dev.state.lock();
    let c = st.bound()?;
    set_size(disk, calc_size(&c.file, c.offset, c.sizelimit));
    Ok(0)
}

fn set_dio(dev: &LoopDevice, disk: &Disk<LoopDevice>, on: bool) -> Result<i32> {
    let mut st = dev.state.lock();
    let c = st.bound_mut()?;
    if (c.flags & flags::DIRECT_IO != 0) == on {
        return Ok(0);
    }
    if on {
        if !can_use_dio(&c.file, c.offset, c.block_size) {
            return Err(EINVAL);
        }
        let _ = c.file.fsync();
    }
    let b = c.binding(on)?;
    let dma = dma_alignment(&c.file, on);
    disk.update_limits_frozen(|l| l.set_dma_alignment(dma))?;
    let frozen = disk.freeze();
    let old = dev.set_binding(Some(b));
    if on {
        c.flags |= flags::DIRECT_IO;
    } else {
        c.flags &= !flags::DIRECT_IO;
    }
    drop(frozen);
    drop(old);
    Ok(0)
}

fn set_block_size(
    dev: &LoopDevice,
    disk: &Disk<LoopDevice>,
    bdev: &Bdev,
    mode: OpenMode,
    arg: usize,
) -> Result<i32> {
    let _claim = if mode.exclusive() {
        None
    } else {
        Some(bdev.prepare_claim()?)
    };
    let mut st = dev.state.lock();
    let c = st.bound_mut()?;
    let arg = u32::try_from(arg).map_err(|_| EINVAL)?;
    let dio = c.flags & flags::DIRECT_IO != 0;
    let bs = match arg {
        0 => default_block_size(&c.file, dio),
        v => v,
    };
    if bs == c.block_size {
        return Ok(0);
    }
    // As loop.ko: the page cache is written back and dropped first, and a size the
    // block layer refuses is refused with its warning.
    disk.sync_and_invalidate();
    let bs = valid_block_size(bs)?;
    disk.update_limits_frozen(|l| l.set_block_size(bs))?;
    c.block_size = bs;
    if dio && !can_use_dio(&c.file, c.offset, bs) {
        c.flags &= !flags::DIRECT_IO;
        let b = c.binding(false)?;
        let frozen = disk.freeze();
        let old = dev.set_binding(Some(b));
        drop(frozen);
        drop(old);
    }
    Ok(0)
}

fn change_fd(dev: &LoopDevice, disk: &Disk<LoopDevice>, fd: u32) -> Result<i32> {
    let file = BackingFile::from_fd(fd)?;
    check_backing_file(&file)?;
    let _validate = registry::validate_lock();
    let bound_ro = |st: &State| match st.bound() {
        Ok(c) if c.flags & flags::READ_ONLY != 0 => Ok(()),
        Ok(_) => Err(EINVAL),
        Err(e) => Err(e),
    };
    // As in `configure`: the walk runs without our state lock, checked again after.
    bound_ro(&dev.state.lock())?;
    validate_file(dev, &file)?;
    let mut st = dev.state.lock();
    bound_ro(&st)?;
    let c = st.bound_mut()?;
    // The same device size (offset and sizelimit applied, as loop.ko), to the
    // byte: loop.ko compares 512-byte sectors, so that 1 MiB and 1 MiB + 100 bytes
    // pass there; a size change is refused here.
    if device_bytes(file.size(), c.offset, c.sizelimit)
        != device_bytes(c.file.size(), c.offset, c.sizelimit)
    {
        return Err(EINVAL);
    }
    let remap = remap_pool(&file, c.offset, &c.remap)?;
    // A file opened with O_DIRECT turns direct I/O on, and it stays on for a later
    // file opened without (`loop_assign_backing_file`), where the file allows it.
    let want_dio = c.flags & flags::DIRECT_IO != 0 || file.opened_direct();
    let dio = want_dio && can_use_dio(&file, c.offset, c.block_size);
    let b = Arc::new(
        Binding::new(
            file.clone(),
            c.offset,
            true,
            dio,
            c.worker.clone(),
            remap.clone(),
        ),
        GFP_KERNEL,
    )?;
    let (old_dma, new_dma) = (
        dma_alignment(&c.file, c.flags & flags::DIRECT_IO != 0),
        dma_alignment(&file, dio),
    );
    // A stricter DMA alignment is in place before the new binding serves I/O, a
    // looser one only after (the limits lock ranks above a freeze).
    if new_dma > old_dma {
        disk.update_limits_frozen(|l| l.set_dma_alignment(new_dma))?;
    }
    let _ = file.fsync();
    disk.suppress_uevents(true);
    disk.force_media_change();
    let old;
    let old_binding;
    {
        let _frozen = disk.freeze();
        c.file.restore_gfp(c.gfp);
        c.gfp = file.restrict_gfp();
        old = core::mem::replace(&mut c.file, file);
        c.remap = remap;
        if dio {
            c.flags |= flags::DIRECT_IO;
        } else {
            c.flags &= !flags::DIRECT_IO;
        }
        old_binding = dev.set_binding(Some(b));
    }
    drop(old_binding);
    if new_dma < old_dma {
        let _ = disk.update_limits_frozen(|l| l.set_dma_alignment(new_dma));
    }
    let partscan = c.flags & flags::PARTSCAN != 0;
    let name = c.file_name;
    disk.suppress_uevents(false);
    drop(st);
    drop(old);
    if partscan {
        reread_partitions(dev, disk, &name);
    }
    // After the partitions' uevents, as loop.ko (loop.c `loop_change_fd`, `done:`).
    disk.uevent_change();
    Ok(0)
}

impl LoopAttrs for LoopDevice {
    fn show(this: &Self, attr: LoopAttr, out: &mut dyn fmt::Write) -> Result {
        let st = this.state.lock();
        let (State::Bound(c) | State::Rundown(c)) = &*st else {
            return Err(ENXIO);
        };
        let r = match attr {
            LoopAttr::BackingFile => {
                let mut buf = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
                let p = c.file.path(&mut buf)?;
                let s = core::str::from_utf8(p).unwrap_or("?");
                writeln!(out, "{s}")
            }
            LoopAttr::Offset => writeln!(out, "{}", c.offset),
            LoopAttr::Sizelimit => writeln!(out, "{}", c.sizelimit),
            LoopAttr::Autoclear => writeln!(out, "{}", u32::from(c.flags & flags::AUTOCLEAR != 0)),
            LoopAttr::Partscan => writeln!(out, "{}", u32::from(c.flags & flags::PARTSCAN != 0)),
            LoopAttr::Dio => writeln!(out, "{}", u32::from(c.flags & flags::DIRECT_IO != 0)),
        };
        r.map_err(|_| EINVAL)
    }
}

#[kunit_tests(rust_loop)]
mod tests {
    use super::*;

    #[test]
    fn size_drops_offset_partial_sector_and_clamps_to_sizelimit() {
        assert_eq!(size_sectors(8 << 20, 0, 0), 16384);
        assert_eq!(size_sectors(8 << 20, 1 << 20, 0), 14336);
        assert_eq!(size_sectors((1 << 20) + 1000, 0, 0), 2049);
        assert_eq!(size_sectors(8 << 20, 4096, 1 << 20), 2048);
        assert_eq!(size_sectors(8 << 20, 9 << 20, 0), 0);
        assert_eq!(size_sectors(4096, 0, 1 << 30), 8);
    }

    #[test]
    fn block_size_must_be_power_of_two_from_512_to_page_size() {
        assert_eq!(check_block_size(0), Ok(0));
        assert_eq!(check_block_size(512), Ok(512));
        assert_eq!(check_block_size(4096), Ok(4096));
        assert_eq!(check_block_size(256), Err(EINVAL));
        assert_eq!(check_block_size(1000), Err(EINVAL));
        assert_eq!(check_block_size(8192), Err(EINVAL));
    }

    #[test]
    fn status_checks_reject_encryption_and_overflow() {
        let mut i = LoopInfo64::zeroed();
        assert_eq!(check_info(&i), Ok(()));
        i.lo_encrypt_type = 1;
        assert_eq!(check_info(&i), Err(EINVAL));
        i.lo_encrypt_type = 0;
        i.lo_encrypt_key_size = 33;
        assert_eq!(check_info(&i), Err(EINVAL));
        i.lo_encrypt_key_size = 32;
        i.lo_offset = 1 << 63;
        assert_eq!(check_info(&i), Err(EOVERFLOW));
    }

    #[test]
    fn legacy_status_round_trip_and_overflow() {
        let mut i = LoopInfo64::zeroed();
        i.lo_offset = 4096;
        i.lo_flags = 8;
        i.lo_file_name[0] = b'x';
        let old = info_to_old(&i).expect("fits");
        assert_eq!(
            (old.lo_offset, old.lo_flags, old.lo_name[0]),
            (4096, 8, b'x')
        );
        i.lo_offset = 1 << 31;
        assert!(info_to_old(&i).is_err());
    }

    #[test]
    fn configure_settable_flags_are_loop_h_values() {
        assert_eq!(flags::CONFIGURE_SETTABLE, 1 | 4 | 8 | 16);
        assert_eq!(flags::SET_STATUS_SETTABLE, 4 | 8);
        assert_eq!(flags::SET_STATUS_CLEARABLE, 4);
    }

    #[test]
    fn ioctl_numbers_are_plain() {
        assert_eq!(cmd::LOOP_SET_FD, 0x4C00);
        assert_eq!(cmd::LOOP_CONFIGURE, 0x4C0A);
        assert_eq!(cmd::LOOP_CTL_GET_FREE, 0x4C82);
    }
}
