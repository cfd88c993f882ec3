// SPDX-License-Identifier: GPL-2.0

//! Block-device backing: bios are remapped, not copied.
//!
//! loop.ko serves a block-device backing through the device's file
//! (`read_iter`/`write_iter`), building new bios from the request's pages.
//! rust_loop clones each bio of the request (the clone shares the pages and the
//! bvec table), shifts it by the offset, and submits it to the backing device, as
//! device-mapper's linear target does; the request ends when its clones have, with
//! the first error. Flushes (no bio) go to the worker, which flushes the device.
//!
//! An offset that is not a multiple of the backing device's logical block size
//! cannot be remapped (the clones would be misaligned there): such a device uses
//! the file path, as loop.ko always does.

use crate::device::{complete, LoopDevice};
use crate::kapi::bio::{BioSet, RemapDone};
use crate::kapi::blk::Request;
use crate::kapi::file::{BackingFile, FileKind};
use kernel::{prelude::*, sync::Arc};

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
    rq.remap(pool, dev, offset);
}

impl RemapDone for LoopDevice {
    fn remap_done(rq: Request<LoopDevice>, res: Result) {
        if res.is_ok() {
            rq.data().stats.add(0, rq.len() as usize);
        }
        complete(rq, res);
    }
}
