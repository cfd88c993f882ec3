// SPDX-License-Identifier: GPL-2.0

//! Queue limits being updated.

use kernel::bindings;

/// `struct queue_limits`, being updated.
pub(crate) struct Limits(pub(super) bindings::queue_limits);

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
    pub(in crate::kapi) fn raw(&mut self) -> *mut bindings::queue_limits {
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
