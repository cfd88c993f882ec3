// SPDX-License-Identifier: GPL-2.0

//! Block-device backing: bios are remapped, not copied.
//!
//! loop.ko serves a block-device backing through the device's file
//! (`read_iter`/`write_iter`), building new bios from the request's pages.
//! rust_loop clones each bio of the request (the clone shares the pages and the
//! bvec table), shifts it by the offset, and submits it to the backing device, as
//! device-mapper's linear target does; the request ends when its clones have, with
//! the first error. As with device-mapper, the split is: kapi/bio.rs clones,
//! submits and counts the clones (dm core), this file decides where a request
//! goes (the target's `map`). Flushes (no bio) go to the worker, which flushes the device.
//!
//! An offset that is not a multiple of the backing device's logical block size
//! cannot be remapped (the clones would be misaligned there): such a device uses
//! the file path, as loop.ko always does.

use crate::device::{complete, LoopDevice};
use crate::kapi::bio::{BioSet, RemapDone};
use crate::kapi::blk::Request;
use crate::kapi::file::{BackingFile, FileKind};
use kernel::{prelude::*, sync::Arc, time::Delta};

/// Whether `file` at `offset` can be served by remapping.
pub(crate) fn can_remap(file: &BackingFile, offset: u64) -> bool {
    match (file.kind(), file.underlying_bdev()) {
        (FileKind::Block(..), Some((lbs, _))) => offset % u64::from(lbs.max(512)) == 0,
        _ => false,
    }
}

/// The clone pool of a remapping device.
pub(crate) fn new_pool() -> Result<Arc<BioSet>> {
    Ok(Arc::new(BioSet::new()?, GFP_KERNEL)?)
}

/// Remaps `rq` (a read, write, discard or write-zeroes) onto the backing device;
/// each clone counts as one segment mapped.
pub(crate) fn submit(rq: Request<LoopDevice>, pool: &BioSet, file: &BackingFile, offset: u64) {
    // A clone pool exists only for block-device files (`can_remap`).
    let Some(dev) = file.block_device() else {
        complete(rq, Err(EIO));
        return;
    };
    rq.data().stats.add(rq.bio_count(), 0);
    rq.remap(pool, dev, |sector| map_sector(offset, sector));
}

/// Where sector `sector` of the loop device lies on the backing device: `offset`
/// bytes further (dm-linear's `linear_map_sector`). `can_remap` made sure the
/// offset is a whole number of the backing device's logical blocks.
fn map_sector(offset: u64, sector: u64) -> u64 {
    sector + (offset >> SECTOR_SHIFT)
}

/// `SECTOR_SHIFT`: block-layer sectors are 512 bytes.
const SECTOR_SHIFT: u32 = 9;

impl RemapDone for LoopDevice {
    fn remap_done(rq: Request<LoopDevice>, res: Result, at_backing: Delta) {
        let dev = rq.data();
        dev.note_backing_time(at_backing);
        if res.is_ok() {
            dev.stats.add(0, rq.len() as usize);
        }
        complete(rq, res);
    }
}

#[kunit_tests(rust_loop_remap)]
mod tests {
    use super::map_sector;

    /// A request lands `offset` bytes further on the backing device.
    #[test]
    fn map_sector_shifts_by_the_offset() {
        assert_eq!(map_sector(0, 0), 0);
        assert_eq!(map_sector(0, 7), 7);
        assert_eq!(map_sector(1 << 20, 0), 2048);
        assert_eq!(map_sector(4096, 10), 18);
    }
}
