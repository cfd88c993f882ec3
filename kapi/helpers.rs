// SPDX-License-Identifier: GPL-2.0

//! Declarations of the one-line C wrappers in `rust_loop_helpers.c`.

#![expect(
    improper_ctypes,
    reason = "kernel structs with zero-sized lockdep members, as in kernel::bindings"
)]

use kernel::bindings;
use kernel::ffi::{c_uint, c_ulong, c_void};

extern "C" {
    pub(super) fn rust_loop_disk_openers(disk: *mut bindings::gendisk) -> c_uint;
    pub(super) fn rust_loop_disk_set_suppress_part_scan(disk: *mut bindings::gendisk, on: bool);
    pub(super) fn rust_loop_disk_set_uevent_suppress(disk: *mut bindings::gendisk, on: bool);
    pub(super) fn rust_loop_disk_kobj(disk: *mut bindings::gendisk) -> *mut bindings::kobject;
    pub(super) fn rust_loop_disk_queue(
        disk: *mut bindings::gendisk,
    ) -> *mut bindings::request_queue;
    pub(super) fn rust_loop_rq_bvecs(
        rq: *mut bindings::request,
        bv: *mut bindings::bio_vec,
    ) -> c_uint;
    pub(super) fn rust_loop_rq_single_bvecs(
        rq: *mut bindings::request,
        offset: *mut c_uint,
    ) -> *mut bindings::bio_vec;
    pub(super) fn rust_loop_rq_zero_fill(rq: *mut bindings::request);
    pub(super) fn rust_loop_file_size(file: *mut bindings::file) -> bindings::loff_t;
    pub(super) fn rust_loop_init_sync_kiocb(kiocb: *mut bindings::kiocb, file: *mut bindings::file);
    pub(super) fn rust_loop_kiocb_start_write(kiocb: *mut bindings::kiocb);
    pub(super) fn rust_loop_kiocb_end_write(kiocb: *mut bindings::kiocb);
    pub(super) fn rust_loop_dev_to_disk(dev: *mut bindings::device) -> *mut bindings::gendisk;
    pub(super) fn rust_loop_bdev_disk(bdev: *mut bindings::block_device) -> *mut bindings::gendisk;
    pub(super) fn rust_loop_file_is_writable(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_can_direct(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_nowait(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_is_shmem(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_statfs_bsize(file: *mut bindings::file) -> u32;
    pub(super) fn rust_loop_current_plug() -> *mut bindings::blk_plug;
    pub(super) fn rust_loop_shmem_resident(
        file: *mut bindings::file,
        pos: bindings::loff_t,
        len: usize,
    ) -> bool;
    pub(super) fn rust_loop_file_is_odirect(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_has_rw(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_has_read(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_has_fsync(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_has_fallocate(file: *mut bindings::file) -> bool;
    pub(super) fn rust_loop_file_mode(file: *mut bindings::file) -> bindings::umode_t;
    pub(super) fn rust_loop_file_rdev(file: *mut bindings::file) -> bindings::dev_t;
    pub(super) fn rust_loop_file_bdev(file: *mut bindings::file) -> *mut bindings::block_device;
    pub(super) fn rust_loop_file_sb_bdev(file: *mut bindings::file) -> *mut bindings::block_device;
    pub(super) fn rust_loop_mapping_restrict_gfp(
        file: *mut bindings::file,
        saved: *mut bindings::gfp_t,
    );
    pub(super) fn rust_loop_mapping_set_gfp(file: *mut bindings::file, gfp: bindings::gfp_t);
    pub(super) fn rust_loop_bdev_logical_block_size(bdev: *mut bindings::block_device) -> c_uint;
    pub(super) fn rust_loop_bdev_dma_alignment(bdev: *mut bindings::block_device) -> c_uint;
    pub(super) fn rust_loop_bdev_rot(bdev: *mut bindings::block_device) -> bool;
    pub(super) fn rust_loop_limits_start_update(
        q: *mut bindings::request_queue,
    ) -> bindings::queue_limits;
    pub(super) fn rust_loop_freeze(q: *mut bindings::request_queue) -> c_uint;
    pub(super) fn rust_loop_unfreeze(q: *mut bindings::request_queue, memflags: c_uint);
    pub(super) fn rust_loop_gfp_noio() -> bindings::gfp_t;
    pub(super) fn rust_loop_bdev_limits(
        bdev: *mut bindings::block_device,
    ) -> *mut bindings::queue_limits;
    pub(super) fn rust_loop_bdev_commits_batches(bdev: *mut bindings::block_device) -> bool;
    pub(super) fn rust_loop_noio_save() -> c_uint;
    pub(super) fn rust_loop_noio_restore(flags: c_uint);
    pub(super) fn rust_loop_rq_blkcg_css(
        rq: *mut bindings::request,
    ) -> *mut bindings::cgroup_subsys_state;
    pub(super) fn rust_loop_kthread_associate_blkcg(css: *mut bindings::cgroup_subsys_state);
    pub(super) fn rust_loop_memcg_css_get(
        blkcg: *mut bindings::cgroup_subsys_state,
    ) -> *mut bindings::cgroup_subsys_state;
    pub(super) fn rust_loop_memcg_from_css(
        css: *mut bindings::cgroup_subsys_state,
    ) -> *mut bindings::mem_cgroup;
    pub(super) fn rust_loop_set_active_memcg(
        memcg: *mut bindings::mem_cgroup,
    ) -> *mut bindings::mem_cgroup;
    pub(super) fn rust_loop_css_put(css: *mut bindings::cgroup_subsys_state);
    pub(super) fn rust_loop_rq_tenant_css_get(
        rq: *mut bindings::request,
    ) -> *mut bindings::cgroup_subsys_state;
    pub(super) fn rust_loop_rq_tenant_key(rq: *mut bindings::request) -> c_ulong;
    pub(super) fn rust_loop_worker_flags_set() -> c_uint;
    pub(super) fn rust_loop_worker_flags_restore(old: c_uint);
    pub(super) fn rust_loop_current_is_kthread() -> bool;
}

#[cfg(not(rl_kernel_ge_7_3))]
extern "C" {
    pub(super) fn rust_loop_spin_lock_irqsave(
        lock: *mut bindings::spinlock_t,
    ) -> kernel::ffi::c_ulong;
    pub(super) fn rust_loop_spin_trylock_irqsave(
        lock: *mut bindings::spinlock_t,
        flags: *mut kernel::ffi::c_ulong,
    ) -> bool;
    pub(super) fn rust_loop_spin_unlock_irqrestore(
        lock: *mut bindings::spinlock_t,
        flags: kernel::ffi::c_ulong,
    );
}

/// Silences "unused" for `c_void` on configurations that use none of the above.
#[expect(dead_code)]
type Unused = c_void;
