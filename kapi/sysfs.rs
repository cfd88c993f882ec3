// SPDX-License-Identifier: GPL-2.0

//! `/sys/block/loopN/loop/`: a read-only attribute group on the disk device.

use super::blk::{Disk, DiskOps};
use crate::kapi::helpers::*;
use core::{fmt, marker::PhantomData};
use kernel::{bindings, error::to_result, ffi, prelude::*};

/// The files of the group, in loop.ko's order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LoopAttr {
    /// `backing_file`.
    BackingFile,
    /// `offset`.
    Offset,
    /// `sizelimit`.
    Sizelimit,
    /// `autoclear`.
    Autoclear,
    /// `partscan`.
    Partscan,
    /// `dio`.
    Dio,
}

/// Produces the text of an attribute of the group.
pub(crate) trait LoopAttrs: DiskOps {
    /// Writes the content of `attr` (with its trailing newline) to `out`.
    fn show(this: &Self, attr: LoopAttr, out: &mut dyn fmt::Write) -> Result;
}

/// A sysfs page being filled.
struct Page {
    buf: *mut u8,
    len: usize,
}

impl fmt::Write for Page {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let page = bindings::PAGE_SIZE;
        if self.len + s.len() >= page {
            return Err(fmt::Error);
        }
        // SAFETY: `buf` is a PAGE_SIZE buffer (sysfs contract) and we stay below it.
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), s.len()) };
        self.len += s.len();
        Ok(())
    }
}

/// # Safety
///
/// Called by sysfs for an attribute of the group, on the device of one of our disks.
unsafe extern "C" fn show_callback<T: LoopAttrs, const N: usize>(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut ffi::c_char,
) -> isize {
    const ATTRS: [LoopAttr; 6] = [
        LoopAttr::BackingFile,
        LoopAttr::Offset,
        LoopAttr::Sizelimit,
        LoopAttr::Autoclear,
        LoopAttr::Partscan,
        LoopAttr::Dio,
    ];
    // SAFETY: The group is only attached to disks of ours, so `dev` is the device of
    // a live disk with driver data `T`.
    let disk = unsafe { Disk::<T>::from_raw(rust_loop_dev_to_disk(dev)) };
    let mut page = Page {
        buf: buf.cast(),
        len: 0,
    };
    match T::show(disk.data(), ATTRS[N], &mut page) {
        Ok(()) => page.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

const fn attr<T: LoopAttrs, const N: usize>(
    name: &'static core::ffi::CStr,
) -> bindings::device_attribute {
    let mut a: bindings::device_attribute = pin_init::zeroed();
    a.attr.name = kernel::str::as_char_ptr_in_const_context(name).cast();
    a.attr.mode = 0o444;
    a.__bindgen_anon_1.show = Some(show_callback::<T, N>);
    a
}

struct Table<T>(PhantomData<T>);

impl<T: LoopAttrs> Table<T> {
    const A0: bindings::device_attribute = attr::<T, 0>(c"backing_file");
    const A1: bindings::device_attribute = attr::<T, 1>(c"offset");
    const A2: bindings::device_attribute = attr::<T, 2>(c"sizelimit");
    const A3: bindings::device_attribute = attr::<T, 3>(c"autoclear");
    const A4: bindings::device_attribute = attr::<T, 4>(c"partscan");
    const A5: bindings::device_attribute = attr::<T, 5>(c"dio");
    const ATTRS: [SyncPtr; 7] = [
        SyncPtr(&Self::A0.attr),
        SyncPtr(&Self::A1.attr),
        SyncPtr(&Self::A2.attr),
        SyncPtr(&Self::A3.attr),
        SyncPtr(&Self::A4.attr),
        SyncPtr(&Self::A5.attr),
        SyncPtr(core::ptr::null()),
    ];
    const GROUP: SyncGroup = {
        let mut g: bindings::attribute_group = pin_init::zeroed();
        g.name = kernel::str::as_char_ptr_in_const_context(c"loop").cast();
        g.__bindgen_anon_2.attrs = core::ptr::from_ref(&Self::ATTRS).cast_mut().cast();
        SyncGroup(g)
    };
}

#[repr(transparent)]
struct SyncPtr(*const bindings::attribute);
// SAFETY: Points to immutable static data.
unsafe impl Sync for SyncPtr {}
#[repr(transparent)]
struct SyncGroup(bindings::attribute_group);
// SAFETY: Immutable static data.
unsafe impl Sync for SyncGroup {}

fn group<T: LoopAttrs>() -> &'static SyncGroup {
    &Table::<T>::GROUP
}

impl<T: LoopAttrs> Disk<T> {
    /// Creates `/sys/block/<disk>/loop/`.
    pub(crate) fn add_loop_attrs(&self) -> Result {
        // SAFETY: The disk's kobject is registered; the group is static.
        to_result(unsafe { bindings::sysfs_create_group(self.kobj(), &group::<T>().0) })
    }

    /// Removes `/sys/block/<disk>/loop/` (waits for running `show` calls).
    pub(crate) fn remove_loop_attrs(&self) {
        // SAFETY: As above; removing a group that is absent is a no-op warning-free.
        unsafe { bindings::sysfs_remove_group(self.kobj(), &group::<T>().0) }
    }
}
