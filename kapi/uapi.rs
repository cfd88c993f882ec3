// SPDX-License-Identifier: GPL-2.0

//! `include/uapi/linux/loop.h` as Rust types. The layouts are asserted here at
//! compile time and, for the same numbers, against the C header in
//! `rust_loop_helpers.c` (`static_assert`), so the two cannot drift apart.

use core::mem::{offset_of, size_of};
use kernel::transmute::{AsBytes, FromBytes};

/// `LO_NAME_SIZE`.
pub(crate) const LO_NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
pub(crate) const LO_KEY_SIZE: usize = 32;

/// `LO_FLAGS_*`.
pub(crate) mod flags {
    /// The device is read-only.
    pub(crate) const READ_ONLY: u32 = 1;
    /// Detach at last close.
    pub(crate) const AUTOCLEAR: u32 = 4;
    /// Scan partitions.
    pub(crate) const PARTSCAN: u32 = 8;
    /// Direct I/O to the backing file.
    pub(crate) const DIRECT_IO: u32 = 16;
    /// `LOOP_SET_STATUS_SETTABLE_FLAGS`.
    pub(crate) const SET_STATUS_SETTABLE: u32 = AUTOCLEAR | PARTSCAN;
    /// `LOOP_SET_STATUS_CLEARABLE_FLAGS`.
    pub(crate) const SET_STATUS_CLEARABLE: u32 = AUTOCLEAR;
    /// `LOOP_CONFIGURE_SETTABLE_FLAGS`.
    pub(crate) const CONFIGURE_SETTABLE: u32 = READ_ONLY | AUTOCLEAR | PARTSCAN | DIRECT_IO;
}

/// `LO_CRYPT_NONE`: the only transfer type left (XOR and cryptoapi are gone).
pub(crate) const LO_CRYPT_NONE: u32 = 0;
/// `LO_CRYPT_XOR`: removed; refused with a log line.
pub(crate) const LO_CRYPT_XOR: u32 = 1;
/// `LO_CRYPT_CRYPTOAPI`: removed; refused with a log line.
pub(crate) const LO_CRYPT_CRYPTOAPI: u32 = 18;

/// The device ioctl numbers (plain numbers, not `_IOW`-encoded).
pub(crate) mod cmd {
    /// Bind a file descriptor.
    pub(crate) const LOOP_SET_FD: u32 = 0x4C00;
    /// Unbind (lazily, at last close).
    pub(crate) const LOOP_CLR_FD: u32 = 0x4C01;
    /// Legacy `struct loop_info`.
    pub(crate) const LOOP_SET_STATUS: u32 = 0x4C02;
    /// Legacy `struct loop_info`.
    pub(crate) const LOOP_GET_STATUS: u32 = 0x4C03;
    /// `struct loop_info64`.
    pub(crate) const LOOP_SET_STATUS64: u32 = 0x4C04;
    /// `struct loop_info64`.
    pub(crate) const LOOP_GET_STATUS64: u32 = 0x4C05;
    /// Replace the backing file of a read-only device.
    pub(crate) const LOOP_CHANGE_FD: u32 = 0x4C06;
    /// Re-read the backing file's size.
    pub(crate) const LOOP_SET_CAPACITY: u32 = 0x4C07;
    /// Switch direct I/O on or off.
    pub(crate) const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
    /// Set the logical block size.
    pub(crate) const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
    /// Bind and configure in one call.
    pub(crate) const LOOP_CONFIGURE: u32 = 0x4C0A;
    /// `/dev/loop-control`: add device N.
    pub(crate) const LOOP_CTL_ADD: u32 = 0x4C80;
    /// `/dev/loop-control`: remove device N.
    pub(crate) const LOOP_CTL_REMOVE: u32 = 0x4C81;
    /// `/dev/loop-control`: find or create a free device.
    pub(crate) const LOOP_CTL_GET_FREE: u32 = 0x4C82;
}

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo64 {
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: u64,
    pub(crate) lo_sizelimit: u64,
    pub(crate) lo_number: u32,
    pub(crate) lo_encrypt_type: u32,
    pub(crate) lo_encrypt_key_size: u32,
    pub(crate) lo_flags: u32,
    pub(crate) lo_file_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_crypt_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopConfig {
    pub(crate) fd: u32,
    pub(crate) block_size: u32,
    pub(crate) info: LoopInfo64,
    pub(crate) reserved: [u64; 8],
}

const _: () = {
    assert!(size_of::<LoopInfo64>() == 232);
    assert!(offset_of!(LoopInfo64, lo_flags) == 52);
    assert!(offset_of!(LoopInfo64, lo_file_name) == 56);
    assert!(offset_of!(LoopInfo64, lo_init) == 216);
    assert!(size_of::<LoopConfig>() == 304);
    assert!(offset_of!(LoopConfig, info) == 8);
    assert!(size_of::<LoopInfo>() == 168);
    assert!(offset_of!(LoopInfo, lo_offset) == 32);
    assert!(offset_of!(LoopInfo, lo_name) == 48);
    // `struct compat_loop_info` (loop.c 1604-1617) as a 32-bit x86 caller lays it out.
    assert!(size_of::<CompatLoopInfo>() == 140);
    assert!(offset_of!(CompatLoopInfo, lo_inode) == 8);
    assert!(offset_of!(CompatLoopInfo, lo_offset) == 16);
    assert!(offset_of!(CompatLoopInfo, lo_name) == 32);
    assert!(offset_of!(CompatLoopInfo, lo_init) == 128);
};

impl LoopInfo64 {
    /// An all-zero structure.
    pub(crate) const fn zeroed() -> Self {
        Self {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: 0,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; LO_KEY_SIZE],
            lo_init: [0; 2],
        }
    }
}

// SAFETY: Plain integers and byte arrays: every bit pattern is valid. `LoopInfo64`
// and `LoopConfig` have no padding (asserted sizes equal the sum of the fields).
unsafe impl FromBytes for LoopInfo64 {}
// SAFETY: As above: no padding bytes, so all bytes are initialised.
unsafe impl AsBytes for LoopInfo64 {}
// SAFETY: Plain integers and a nested `LoopInfo64`: every bit pattern is valid.
unsafe impl FromBytes for LoopConfig {}
/// Legacy `struct loop_info` (x86-64 layout: `__kernel_old_dev_t` is 64-bit), with
/// the C struct's padding made explicit so that no uninitialised byte can reach
/// user memory.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo {
    pub(crate) lo_number: i32,
    pub(crate) pad0: u32,
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u64; 2],
    pub(crate) reserved: [u8; 8],
}

// SAFETY: Plain integers and byte arrays: every bit pattern is valid.
unsafe impl FromBytes for LoopInfo {}
// SAFETY: No implicit padding: every byte belongs to a field.
unsafe impl AsBytes for LoopInfo {}

/// `struct compat_loop_info`: the legacy `loop_info` of a 32-bit caller
/// (`compat_dev_t` is 16-bit and `compat_ulong_t` 32-bit on x86), with the padding
/// that i386 alignment puts after each 16-bit field made explicit.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CompatLoopInfo {
    pub(crate) lo_number: i32,
    pub(crate) lo_device: u16,
    pub(crate) pad0: u16,
    pub(crate) lo_inode: u32,
    pub(crate) lo_rdevice: u16,
    pub(crate) pad1: u16,
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u32; 2],
    pub(crate) reserved: [u8; 4],
}

// SAFETY: Plain integers and byte arrays: every bit pattern is valid.
unsafe impl FromBytes for CompatLoopInfo {}
// SAFETY: No implicit padding: every byte belongs to a field (size asserted above).
unsafe impl AsBytes for CompatLoopInfo {}
