// SPDX-License-Identifier: GPL-2.0

//! An `iov_iter` over a request's own pages.

use core::marker::PhantomData;
use kernel::{bindings, prelude::*};

/// An `iov_iter` over a request's pages.
pub(crate) struct DataIter<'a> {
    pub(super) iter: bindings::iov_iter,
    pub(super) _owned: KVec<bindings::bio_vec>,
    pub(super) nr_segs: u32,
    pub(super) _rq: PhantomData<&'a ()>,
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
    pub(in crate::kapi) fn take_owned(&mut self) -> KVec<bindings::bio_vec> {
        core::mem::take(&mut self._owned)
    }

    pub(in crate::kapi) fn raw(&mut self) -> *mut bindings::iov_iter {
        &mut self.iter
    }
}
