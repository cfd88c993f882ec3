// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inline kernel functions and macros that bindgen
 * cannot reach. Declared once on the Rust side, in kapi/helpers.rs. No logic here.
 */
#include <linux/blk-cgroup.h>
#include <linux/blk-mq.h>
#include <linux/cgroup.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/fs.h>
#include <linux/major.h>
#include <linux/pagemap.h>
#include <uapi/linux/magic.h>
#include <linux/uio.h>
#include <linux/sched/mm.h>
#include <linux/shmem_fs.h>
#include <linux/statfs.h>
#include <linux/swap.h>
#include <linux/version.h>
#include <linux/xarray.h>
#include "rust_loop_helpers.h"

/*
 * The driver's two global locks (loop.c's loop_ctl_mutex and loop_validate_mutex),
 * statically initialised by DEFINE_MUTEX: valid from the moment the module is
 * loaded, so no init call can be missed or repeated. Rust cannot write this
 * initialiser (the wait list points at itself, lockdep's map is a macro); kapi/sync.rs
 * puts the data they guard next to them (StaticMutex).
 */
DEFINE_MUTEX(rust_loop_ctl_mutex);
DEFINE_MUTEX(rust_loop_validate_mutex);

unsigned int rust_loop_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

void rust_loop_disk_set_suppress_part_scan(struct gendisk *disk, bool on)
{
	if (on)
		set_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
	else
		clear_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
}

void rust_loop_disk_set_uevent_suppress(struct gendisk *disk, bool on)
{
	dev_set_uevent_suppress(disk_to_dev(disk), on);
}

struct kobject *rust_loop_disk_kobj(struct gendisk *disk)
{
	return &disk_to_dev(disk)->kobj;
}

struct request_queue *rust_loop_disk_queue(struct gendisk *disk)
{
	return disk->queue;
}

/* rq_for_each_bvec: count (bv == NULL) or copy the request's bvecs. */
unsigned int rust_loop_rq_bvecs(struct request *rq, struct bio_vec *bv)
{
	struct req_iterator iter;
	struct bio_vec tmp;
	unsigned int n = 0;

	rq_for_each_bvec(tmp, rq, iter) {
		if (bv)
			bv[n] = tmp;
		n++;
	}
	return n;
}

/* Linux 7.3 renamed bvec_iter.bi_bvec_done (bytes done in the current bvec). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 3, 0)
#define RL_ITER_BVEC_OFFSET(iter) ((iter).bi_offset)
#else
#define RL_ITER_BVEC_OFFSET(iter) ((iter).bi_bvec_done)
#endif

/* The bvec table and offset of a single-bio request, for an iterator in place. */
struct bio_vec *rust_loop_rq_single_bvecs(struct request *rq, unsigned int *offset)
{
	struct bio *bio = rq->bio;

	if (!bio || bio != rq->biotail)
		return NULL;
	*offset = RL_ITER_BVEC_OFFSET(bio->bi_iter);
	return (struct bio_vec *)__bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter);
}

void rust_loop_rq_zero_fill(struct request *rq)
{
	struct bio *bio;

	__rq_for_each_bio(bio, rq)
		zero_fill_bio(bio);
}

/* The size of what the file maps: the whole device for a block device file. */
loff_t rust_loop_file_size(struct file *file)
{
	return i_size_read(file->f_mapping->host);
}

void rust_loop_init_sync_kiocb(struct kiocb *kiocb, struct file *file)
{
	init_sync_kiocb(kiocb, file);
}

void rust_loop_kiocb_start_write(struct kiocb *kiocb)
{
	kiocb_start_write(kiocb);
}

void rust_loop_kiocb_end_write(struct kiocb *kiocb)
{
	kiocb_end_write(kiocb);
}

struct gendisk *rust_loop_dev_to_disk(struct device *dev)
{
	return dev_to_disk(dev);
}

struct gendisk *rust_loop_bdev_disk(struct block_device *bdev)
{
	return bdev->bd_disk;
}


bool rust_loop_file_is_writable(struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

bool rust_loop_file_can_direct(struct file *file)
{
	return file->f_mode & FMODE_CAN_ODIRECT;
}

bool rust_loop_file_nowait(struct file *file)
{
	return file->f_mode & FMODE_NOWAIT;
}

/* The backing filesystem's block size (statfs f_bsize), 0 if statfs fails. */
u32 rust_loop_file_statfs_bsize(struct file *file)
{
	struct kstatfs st;

	if (vfs_statfs(&file->f_path, &st) || st.f_bsize <= 0 || st.f_bsize > U32_MAX)
		return 0;
	return st.f_bsize;
}

/* current->plug, read only (kapi/blk/task.rs: plugged). */
struct blk_plug *rust_loop_current_plug(void)
{
	return current->plug;
}

/*
 * A regular file on tmpfs/shmem. Not a device node that merely lives on devtmpfs:
 * the mapping must be shmem's own.
 */
bool rust_loop_file_is_shmem(struct file *file)
{
	return S_ISREG(file_inode(file)->i_mode) && shmem_mapping(file->f_mapping);
}

/*
 * Whether a buffered read of [pos, pos + len) of a shmem file can only copy from
 * memory: no free swap slot exists (so nothing can be swapped out right now; with
 * CONFIG_SWAP=n this is always so) and no page of the range is swapped out (a swap
 * entry is an xarray value entry). A swap-in from within ->queue_rq would wait for
 * a bio that the block layer only submits after ->queue_rq returns.
 */
bool rust_loop_shmem_resident(struct file *file, loff_t pos, size_t len)
{
	struct address_space *mapping = file->f_mapping;
	XA_STATE(xas, &mapping->i_pages, pos >> PAGE_SHIFT);
	pgoff_t last = (pos + len - 1) >> PAGE_SHIFT;
	bool resident = true;
	void *entry;

	if (get_nr_swap_pages() > 0)
		return false;
	rcu_read_lock();
	xas_for_each(&xas, entry, last) {
		if (xas_retry(&xas, entry))
			continue;
		if (xa_is_value(entry)) {
			resident = false;
			break;
		}
	}
	rcu_read_unlock();
	return resident;
}

bool rust_loop_file_is_odirect(struct file *file)
{
	return file->f_flags & O_DIRECT;
}

bool rust_loop_file_has_rw(struct file *file)
{
	return file->f_op->read_iter && file->f_op->write_iter;
}

bool rust_loop_file_has_read(struct file *file)
{
	return file->f_op->read_iter;
}

bool rust_loop_file_has_fsync(struct file *file)
{
	return file->f_op->fsync;
}

bool rust_loop_file_has_fallocate(struct file *file)
{
	return file->f_op->fallocate;
}

umode_t rust_loop_file_mode(struct file *file)
{
	return file_inode(file)->i_mode;
}

dev_t rust_loop_file_rdev(struct file *file)
{
	return file_inode(file)->i_rdev;
}

struct block_device *rust_loop_file_bdev(struct file *file)
{
	return S_ISBLK(file_inode(file)->i_mode) ? file_bdev(file) : NULL;
}

struct block_device *rust_loop_file_sb_bdev(struct file *file)
{
	return file_inode(file)->i_sb->s_bdev;
}

void rust_loop_mapping_restrict_gfp(struct file *file, gfp_t *saved)
{
	struct address_space *m = file->f_mapping;

	*saved = mapping_gfp_mask(m);
	mapping_set_gfp_mask(m, *saved & ~(__GFP_IO | __GFP_FS));
}

void rust_loop_mapping_set_gfp(struct file *file, gfp_t gfp)
{
	mapping_set_gfp_mask(file->f_mapping, gfp);
}

unsigned int rust_loop_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

unsigned int rust_loop_bdev_dma_alignment(struct block_device *bdev)
{
	return bdev_dma_alignment(bdev);
}

bool rust_loop_bdev_rot(struct block_device *bdev)
{
	return bdev_rot(bdev);
}



struct queue_limits rust_loop_limits_start_update(struct request_queue *q)
{
	return queue_limits_start_update(q);
}

unsigned int rust_loop_freeze(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

void rust_loop_unfreeze(struct request_queue *q, unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}

unsigned int rust_loop_noio_save(void)
{
	return memalloc_noio_save();
}

void rust_loop_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

/* The UAPI layouts rust_loop's Rust types (kapi/uapi.rs) are written for. */
#include <uapi/linux/loop.h>
static_assert(sizeof(struct loop_info64) == 232);
static_assert(offsetof(struct loop_info64, lo_flags) == 52);
static_assert(offsetof(struct loop_info64, lo_file_name) == 56);
static_assert(offsetof(struct loop_info64, lo_init) == 216);
static_assert(sizeof(struct loop_config) == 304);
static_assert(offsetof(struct loop_config, info) == 8);
static_assert(sizeof(struct loop_info) == 168);
static_assert(offsetof(struct loop_info, lo_offset) == 32);
static_assert(offsetof(struct loop_info, lo_name) == 48);
static_assert(sizeof(__kernel_old_dev_t) == 8);

gfp_t rust_loop_gfp_noio(void)
{
	return GFP_NOIO;
}

struct queue_limits *rust_loop_bdev_limits(struct block_device *bdev)
{
	return &bdev_get_queue(bdev)->limits;
}

/* Whether the device's driver rings its doorbell once per batch (->commit_rqs). */
bool rust_loop_bdev_commits_batches(struct block_device *bdev)
{
	const struct blk_mq_ops *ops = bdev_get_queue(bdev)->mq_ops;

	return ops && ops->commit_rqs;
}

/* spin_lock_irqsave and friends are macros; kapi/sync.rs uses them on 7.2. */
unsigned long rust_loop_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

bool rust_loop_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags)
{
	return spin_trylock_irqsave(lock, *flags);
}

void rust_loop_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

/* The kiocb flags kapi/file.rs spells out as numbers. */
static_assert(IOCB_NOWAIT == 0x8);
static_assert(IOCB_NOIO == (1 << 20));
static_assert(IOCB_WRITE == (1 << 18));

/* cgroup attribution of the worker's I/O (kapi/cgroup.rs), as loop_handle_cmd. */
struct cgroup_subsys_state *rust_loop_rq_blkcg_css(struct request *rq)
{
	return rq->bio ? bio_blkcg_css(rq->bio) : NULL;
}

void rust_loop_kthread_associate_blkcg(struct cgroup_subsys_state *css)
{
	kthread_associate_blkcg(css);
}

struct cgroup_subsys_state *rust_loop_memcg_css_get(struct cgroup_subsys_state *blkcg)
{
#ifdef CONFIG_MEMCG
	return cgroup_get_e_css(blkcg->cgroup, &memory_cgrp_subsys);
#else
	return NULL;
#endif
}

struct mem_cgroup *rust_loop_memcg_from_css(struct cgroup_subsys_state *css)
{
	return mem_cgroup_from_css(css);
}

struct mem_cgroup *rust_loop_set_active_memcg(struct mem_cgroup *memcg)
{
	return set_active_memcg(memcg);
}

void rust_loop_css_put(struct cgroup_subsys_state *css)
{
	css_put(css);
}

/*
 * The blkcg whose worker serves a request (loop.ko's queue_on_root_worker): NULL
 * for none or the root cgroup, which the device's first worker serves.
 */
static struct cgroup_subsys_state *rust_loop_rq_tenant_css(struct request *rq)
{
	struct cgroup_subsys_state *css = rust_loop_rq_blkcg_css(rq);

#ifdef CONFIG_BLK_CGROUP
	if (css == blkcg_root_css)
		return NULL;
#endif
	return css;
}

/* The same, with a reference taken; rust_loop_css_put drops it. */
struct cgroup_subsys_state *rust_loop_rq_tenant_css_get(struct request *rq)
{
	struct cgroup_subsys_state *css = rust_loop_rq_tenant_css(rq);

	if (css)
		css_get(css);
	return css;
}

/* The same blkcg's address, for comparison only; 0 for what the root worker serves. */
unsigned long rust_loop_rq_tenant_key(struct request *rq)
{
	return (unsigned long)rust_loop_rq_tenant_css(rq);
}

/*
 * The worker's task flags, as loop_process_work sets them: PF_MEMALLOC_NOIO (no
 * allocation recurses into I/O that could come back to this device) and
 * PF_LOCAL_THROTTLE (dirty throttling against the backing file's own bdi only:
 * the worker cleans the loop device's dirty pages, so throttling it against the
 * global dirty count, which includes them, would slow the cleaning down).
 * Returns the flags' previous values for rust_loop_worker_flags_restore.
 */
unsigned int rust_loop_worker_flags_set(void)
{
	unsigned int old = current->flags & (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE);

	current->flags |= PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE;
	return old;
}

void rust_loop_worker_flags_restore(unsigned int old)
{
	current->flags = (current->flags & ~(PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)) | old;
}

bool rust_loop_current_is_kthread(void)
{
	return current->flags & PF_KTHREAD;
}
