// SPDX-License-Identifier: GPL-2.0

//! Disks, the tag set, requests and queue limits.
//!
//! 7.3's `kernel::block::mq` builds a gendisk without `open`/`release`/`ioctl`
//! hooks, without a major, and without any way to change capacity or limits after
//! `add_disk`, so loop cannot use it. This module is the same idea with those parts:
//! a disk's driver data is an `Arc<T>` owned by the gendisk (dropped in `free_disk`),
//! and the blk-mq and block-device callbacks hand the driver `&T`, `&Disk<T>` and an
//! owned, started `Request<T>` that must be ended exactly once.
//!
//! One file per kernel object, as `rust/kernel/block/mq/`.

mod bdev;
mod data_iter;
mod disk;
mod limits;
mod operations;
mod request;
mod tag_set;
mod task;

pub(crate) use bdev::*;
pub(crate) use data_iter::*;
pub(crate) use disk::*;
pub(crate) use limits::*;
pub(crate) use operations::*;
pub(crate) use request::*;
pub(crate) use tag_set::*;
pub(crate) use task::*;
