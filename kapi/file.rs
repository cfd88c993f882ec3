// SPDX-License-Identifier: GPL-2.0

//! The backing file: what loop reads and writes on behalf of its requests.
//!
//! Built on `kernel::fs::File` (reference counting, `fget`); adds what 7.3's `File`
//! lacks: its mode, size and type, I/O through the file's own `read_iter` /
//! `write_iter` with a kiocb of ours, `fsync`, `fallocate`, `d_path` and `getattr`.

use super::blk::DataIter;
use crate::kapi::helpers::*;
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi,
    fs::{File, LocalFile},
    prelude::*,
    sync::aref::ARef,
};

/// What kind of file the backing file is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FileKind {
    /// A regular file.
    Regular,
    /// A block device node with this `(major, minor)`.
    Block(u32, u32),
    /// Anything else (directory, pipe, socket, character device).
    Other,
}

/// A file that backs a loop device.
///
/// # Invariants
///
/// `0` is a counted reference to an open file.
#[derive(Clone)]
pub(crate) struct BackingFile(ARef<File>);

/// What direct I/O to a backing file must be aligned to.
#[derive(Clone, Copy)]
pub(crate) struct DioAlign {
    /// File offsets and lengths (`dio_offset_align`).
    pub(crate) offset: u32,
    /// Memory addresses, as a mask (`dio_mem_align - 1`).
    pub(crate) mem_mask: u32,
}

/// Identity of a backing file as `LOOP_GET_STATUS64` reports it.
pub(crate) struct FileStat {
    /// `st_dev` (huge-encoded).
    pub(crate) dev: u64,
    /// `st_ino`.
    pub(crate) ino: u64,
    /// `st_rdev` (huge-encoded).
    pub(crate) rdev: u64,
}

/// `fallocate` modes loop uses.
pub(crate) mod falloc {
    /// `FALLOC_FL_KEEP_SIZE`.
    pub(crate) const KEEP_SIZE: i32 = 0x01;
    /// `FALLOC_FL_PUNCH_HOLE`.
    pub(crate) const PUNCH_HOLE: i32 = 0x02;
    /// `FALLOC_FL_ZERO_RANGE`.
    pub(crate) const ZERO_RANGE: i32 = 0x10;
}

/// kiocb flags loop sets on backing I/O.
pub(crate) mod iocb {
    /// `IOCB_DIRECT`: bypass the page cache.
    pub(crate) const DIRECT: u32 = kernel::bindings::IOCB_DIRECT;
    /// `IOCB_NOWAIT`: fail with `EAGAIN` instead of blocking.
    pub(crate) const NOWAIT: u32 = 0x8;
    /// `IOCB_NOIO`: only what is in the page cache; no readahead, no I/O.
    pub(crate) const NOIO: u32 = 1 << 20;
    /// `IOCB_WRITE`.
    pub(crate) const WRITE: u32 = 1 << 18;
}

/// `huge_encode_dev`/`new_encode_dev` of a kernel `dev_t`.
fn encode_dev(dev: bindings::dev_t) -> u64 {
    let major = u64::from(dev >> bindings::MINORBITS);
    let minor = u64::from(dev & ((1 << bindings::MINORBITS) - 1));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

impl BackingFile {
    /// Takes a reference to the file behind `fd` of the calling process.
    pub(crate) fn from_fd(fd: u32) -> Result<Self> {
        let local = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: Called from an ioctl: the file is not used for `fdget_pos` style
        // position updates by us; we only do positioned I/O with our own kiocbs.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        // INVARIANT: `fget` returned a counted reference.
        Ok(Self(file))
    }

    pub(super) fn raw(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    /// The file's type.
    pub(crate) fn kind(&self) -> FileKind {
        // SAFETY: The file is open (type invariant).
        let mode = u32::from(unsafe { rust_loop_file_mode(self.raw()) });
        match mode & bindings::S_IFMT {
            bindings::S_IFREG => FileKind::Regular,
            bindings::S_IFBLK => {
                // SAFETY: As above.
                let rdev = unsafe { rust_loop_file_rdev(self.raw()) };
                FileKind::Block(
                    rdev >> bindings::MINORBITS,
                    rdev & ((1 << bindings::MINORBITS) - 1),
                )
            }
            _ => FileKind::Other,
        }
    }

    /// Opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_is_writable(self.raw()) }
    }

    /// Has `read_iter` (and `write_iter` when `write`): loop's minimum.
    pub(crate) fn has_io_ops(&self, write: bool) -> bool {
        // SAFETY: The file is open; `f_op` is set for its lifetime.
        unsafe {
            if write {
                rust_loop_file_has_rw(self.raw())
            } else {
                rust_loop_file_has_read(self.raw())
            }
        }
    }

    /// Has `fsync`.
    pub(crate) fn has_fsync(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_has_fsync(self.raw()) }
    }

    /// Has `fallocate`.
    pub(crate) fn has_fallocate(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_has_fallocate(self.raw()) }
    }

    /// Supports `O_DIRECT` (`FMODE_CAN_ODIRECT`).
    pub(crate) fn can_direct(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_can_direct(self.raw()) }
    }

    /// Takes `IOCB_NOWAIT` (`FMODE_NOWAIT`).
    pub(crate) fn supports_nowait(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_nowait(self.raw()) }
    }

    /// A regular file on tmpfs/shmem: its page cache is the data, so a buffered read
    /// only blocks if a page was swapped out (shmem has no `FMODE_NOWAIT`).
    pub(crate) fn is_shmem(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_is_shmem(self.raw()) }
    }

    /// The block size of the filesystem the file lives on (`statfs` `f_bsize`),
    /// `None` if statfs fails.
    pub(crate) fn fs_block_size(&self) -> Option<u32> {
        // SAFETY: The file is open.
        let bs = unsafe { rust_loop_file_statfs_bsize(self.raw()) };
        (bs != 0).then_some(bs)
    }

    /// For a shmem file: no byte of `[pos, pos + len)` needs a swap-in to be read,
    /// and no swap-out can start (no free swap slot).
    pub(crate) fn shmem_resident(&self, pos: u64, len: usize) -> bool {
        let Ok(pos) = bindings::loff_t::try_from(pos) else {
            return false;
        };
        // SAFETY: The file is open; the helper only reads its page-cache index
        // under RCU.
        unsafe { rust_loop_shmem_resident(self.raw(), pos, len) }
    }

    /// Was opened with `O_DIRECT`.
    pub(crate) fn opened_direct(&self) -> bool {
        // SAFETY: The file is open.
        unsafe { rust_loop_file_is_odirect(self.raw()) }
    }

    /// Current size in bytes (of the whole device for a block device).
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: The file is open; `i_size_read` of its mapping's host.
        let s = unsafe { rust_loop_file_size(self.raw()) };
        s.max(0) as u64
    }

    /// Logical block size and rotational flag of the block device under the file:
    /// the device itself for a block device file, else the filesystem's device.
    pub(crate) fn underlying_bdev(&self) -> Option<(u32, bool)> {
        // SAFETY: The file is open; for a block device file `file_bdev` is its bdev,
        // else the superblock's (may be NULL, e.g. tmpfs).
        let bdev = unsafe {
            if matches!(self.kind(), FileKind::Block(..)) {
                bindings::file_bdev(self.raw())
            } else {
                rust_loop_file_sb_bdev(self.raw())
            }
        };
        if bdev.is_null() {
            return None;
        }
        // SAFETY: `bdev` is live while the file (and its superblock) is.
        Some(unsafe {
            (
                rust_loop_bdev_logical_block_size(bdev),
                rust_loop_bdev_rot(bdev),
            )
        })
    }

    fn rw(&self, iter: &mut DataIter<'_>, pos: u64, write: bool, flags: u32) -> Result<usize> {
        let file = self.raw();
        // SAFETY: All-zero is valid for `kiocb`; `init_sync_kiocb` fills it for
        // `file`, which is open. The kiocb lives on this stack frame for the whole
        // synchronous call (no `ki_complete`, so the filesystem completes inline).
        let ret = unsafe {
            let mut kiocb: bindings::kiocb = pin_init::zeroed();
            rust_loop_init_sync_kiocb(&mut kiocb, file);
            // Our flags only: an O_DIRECT backing fd must not force direct I/O
            // when the device has it switched off.
            kiocb.ki_flags = (flags | if write { iocb::WRITE } else { 0 }) as ffi::c_int;
            kiocb.ki_pos = pos as bindings::loff_t;
            let fop = (*file).f_op;
            if write {
                let Some(w) = (*fop).write_iter else {
                    return Err(EINVAL);
                };
                rust_loop_kiocb_start_write(&mut kiocb);
                let r = w(&mut kiocb, iter.raw());
                rust_loop_kiocb_end_write(&mut kiocb);
                r
            } else {
                let Some(r) = (*fop).read_iter else {
                    return Err(EINVAL);
                };
                r(&mut kiocb, iter.raw())
            }
        };
        if ret < 0 {
            Err(Error::from_errno(ret as i32))
        } else {
            Ok(ret as usize)
        }
    }

    /// Reads into `iter` from `pos`; returns the bytes read (short at end of file).
    pub(crate) fn read(&self, iter: &mut DataIter<'_>, pos: u64, flags: u32) -> Result<usize> {
        self.rw(iter, pos, false, flags)
    }

    /// Writes `iter` at `pos`; returns the bytes written.
    pub(crate) fn write(&self, iter: &mut DataIter<'_>, pos: u64, flags: u32) -> Result<usize> {
        self.rw(iter, pos, true, flags)
    }

    /// `vfs_fsync(file, 0)`.
    pub(crate) fn fsync(&self) -> Result {
        // SAFETY: The file is open.
        to_result(unsafe { bindings::vfs_fsync(self.raw(), 0) })
    }

    /// `vfs_fallocate`.
    pub(crate) fn fallocate(&self, mode: i32, pos: u64, len: u64) -> Result {
        // SAFETY: The file is open.
        to_result(unsafe { bindings::vfs_fallocate(self.raw(), mode, pos as i64, len as i64) })
    }

    /// The file's path (`d_path`, with " (deleted)" if unlinked) into `buf`.
    pub(crate) fn path<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8]> {
        let start = buf.as_mut_ptr();
        // SAFETY: `buf` is writable for its length; `file_path` writes the name at
        // the end of it and returns a pointer into it (or an error pointer).
        let p = from_err_ptr(unsafe {
            bindings::file_path(self.raw(), start.cast(), buf.len() as i32)
        })?;
        let off = (p as usize).wrapping_sub(start as usize);
        if off >= buf.len() {
            return Err(super::errno::enametoolong());
        }
        let tail = &buf[off..];
        let n = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Ok(&buf[off..off + n])
    }

    /// Direct I/O alignment (`loop_update_dio_alignment`): the file's
    /// `STATX_DIOALIGN` if it reports one, else its filesystem's device's logical
    /// block size and DMA alignment, else 512 bytes.
    pub(crate) fn dio_alignment(&self) -> DioAlign {
        let mut st: bindings::kstat = pin_init::zeroed();
        // SAFETY: `f_path` is valid while the file is open; `st` outlives the call.
        let ret = unsafe {
            bindings::vfs_getattr(
                &(*self.raw()).__bindgen_anon_1.f_path,
                &mut st,
                bindings::STATX_DIOALIGN,
                0,
            )
        };
        if ret == 0 && st.result_mask & bindings::STATX_DIOALIGN != 0 && st.dio_mem_align != 0 {
            return DioAlign {
                offset: st.dio_offset_align,
                mem_mask: (st.dio_mem_align - 1).min(kernel::page::PAGE_SIZE as u32 - 1),
            };
        }
        // SAFETY: The file is open; its superblock's device may be NULL (tmpfs).
        let bdev = unsafe { rust_loop_file_sb_bdev(self.raw()) };
        if bdev.is_null() {
            return DioAlign {
                offset: 512,
                mem_mask: 511,
            };
        }
        // SAFETY: `bdev` is live while the file (and its superblock) is.
        unsafe {
            DioAlign {
                offset: rust_loop_bdev_logical_block_size(bdev),
                mem_mask: rust_loop_bdev_dma_alignment(bdev),
            }
        }
    }

    /// Device, inode and rdev of the file, as `stat()` shows them.
    pub(crate) fn stat(&self) -> Result<FileStat> {
        let mut st: bindings::kstat = pin_init::zeroed();
        // SAFETY: `f_path` is valid while the file is open; `st` outlives the call.
        to_result(unsafe {
            bindings::vfs_getattr(
                &(*self.raw()).__bindgen_anon_1.f_path,
                &mut st,
                bindings::STATX_INO,
                0,
            )
        })?;
        Ok(FileStat {
            dev: encode_dev(st.dev),
            ino: st.ino,
            rdev: encode_dev(st.rdev),
        })
    }

    /// Strips `__GFP_IO | __GFP_FS` from the file's page cache allocations while it
    /// backs a loop device (reclaim must not recurse into loop); returns the old mask.
    pub(crate) fn restrict_gfp(&self) -> GfpMask {
        let mut saved: bindings::gfp_t = 0;
        // SAFETY: The file and its mapping are live.
        unsafe { rust_loop_mapping_restrict_gfp(self.raw(), &mut saved) };
        GfpMask(saved)
    }

    /// Puts back a mask saved by [`Self::restrict_gfp`].
    pub(crate) fn restore_gfp(&self, mask: GfpMask) {
        // SAFETY: The file and its mapping are live.
        unsafe { rust_loop_mapping_set_gfp(self.raw(), mask.0) }
    }
}

/// A saved page cache allocation mask.
#[derive(Clone, Copy)]
pub(crate) struct GfpMask(bindings::gfp_t);
