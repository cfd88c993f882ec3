// SPDX-License-Identifier: GPL-2.0

//! Device numbers: a block major with an on-open probe, and a misc device with a
//! fixed minor (the `kernel` crate's `MiscDeviceRegistration` only does dynamic
//! minors, and loop-control must be 10:237).

use core::marker::PhantomData;
use kernel::{bindings, error::to_result, ffi, prelude::*, str::CStr, types::Opaque};

/// Answers `open()` of a block device node whose device does not exist yet.
pub(crate) trait Probe {
    /// Called with the minor number of the opened node.
    fn probe(minor: u32);
}

/// A registered block major.
///
/// # Invariants
///
/// `major` is registered under `name` until `drop`.
pub(crate) struct BlockMajor {
    major: u32,
    name: &'static CStr,
}

/// # Safety
///
/// Called by the block core with the `dev_t` of a node that has no disk.
unsafe extern "C" fn probe_callback<T: Probe>(devt: bindings::dev_t) {
    T::probe(devt & ((1 << bindings::MINORBITS) - 1));
}

impl BlockMajor {
    /// Registers block `major` as `name`; opening an unknown minor calls `T::probe`.
    pub(crate) fn register<T: Probe>(major: u32, name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a static C string; the probe callback has the signature
        // the block core expects and stays valid while the module is loaded (this
        // registration is dropped before the module text goes away).
        let ret = unsafe {
            bindings::__register_blkdev(major, name.as_char_ptr(), Some(probe_callback::<T>))
        };
        to_result(ret)?;
        // INVARIANT: registration succeeded.
        Ok(Self { major, name })
    }

    /// The registered major number.
    pub(crate) fn major(&self) -> u32 {
        self.major
    }
}

impl Drop for BlockMajor {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the major is registered under this name.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}

/// The ioctl handler of a control character device.
pub(crate) trait ControlOps {
    /// Handles `cmd` with its raw argument; returns the ioctl's result.
    fn ioctl(cmd: u32, arg: usize) -> Result<isize>;
}

/// A misc character device with a fixed minor and only an ioctl entry point.
///
/// # Invariants
///
/// `misc` is registered with the misc core until `drop`.
pub(crate) struct ControlDevice<T: ControlOps> {
    misc: Pin<KBox<Opaque<bindings::miscdevice>>>,
    _ops: PhantomData<T>,
}

// SAFETY: The registration is only touched at register and drop time; the misc core
// serialises its own use of the structure.
unsafe impl<T: ControlOps> Send for ControlDevice<T> {}
// SAFETY: No method takes `&self` to mutate the registration.
unsafe impl<T: ControlOps> Sync for ControlDevice<T> {}

/// # Safety
///
/// Called by the VFS for an open file of the control device.
unsafe extern "C" fn control_ioctl<T: ControlOps>(
    _file: *mut bindings::file,
    cmd: ffi::c_uint,
    arg: ffi::c_ulong,
) -> ffi::c_long {
    match T::ioctl(cmd, arg) {
        Ok(v) => v as ffi::c_long,
        Err(e) => e.to_errno() as ffi::c_long,
    }
}

struct ControlVtable<T>(PhantomData<T>);

impl<T: ControlOps> ControlVtable<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: super::this_module(),
        open: Some(bindings::nonseekable_open),
        llseek: Some(bindings::noop_llseek),
        unlocked_ioctl: Some(control_ioctl::<T>),
        compat_ioctl: Some(control_ioctl::<T>),
        // Every other hook `None`.
        ..pin_init::zeroed()
    };
}

impl<T: ControlOps> ControlDevice<T> {
    /// Registers `/dev/<name>` as misc minor `minor`.
    pub(crate) fn register(name: &'static CStr, minor: u32) -> Result<Self> {
        let misc = KBox::pin(Opaque::<bindings::miscdevice>::zeroed(), GFP_KERNEL)?;
        let ptr = misc.get();
        // SAFETY: `ptr` points to a zeroed, pinned `miscdevice` that lives until
        // `drop` deregisters it; `name` and the vtable are static.
        let ret = unsafe {
            (*ptr).minor = minor as ffi::c_int;
            (*ptr).name = name.as_char_ptr();
            (*ptr).fops = &ControlVtable::<T>::FOPS;
            bindings::misc_register(ptr)
        };
        to_result(ret)?;
        // INVARIANT: registered above.
        Ok(Self {
            misc,
            _ops: PhantomData,
        })
    }
}

impl<T: ControlOps> Drop for ControlDevice<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}
