/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of rust_loop_helpers.c; the Rust side declares them in kapi/helpers.rs. */
#ifndef RUST_LOOP_HELPERS_H
#define RUST_LOOP_HELPERS_H
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>

extern struct mutex rust_loop_ctl_mutex;
extern struct mutex rust_loop_validate_mutex;

unsigned int rust_loop_disk_openers(struct gendisk *disk);
void rust_loop_disk_set_suppress_part_scan(struct gendisk *disk, bool on);
void rust_loop_disk_set_uevent_suppress(struct gendisk *disk, bool on);
struct kobject *rust_loop_disk_kobj(struct gendisk *disk);
struct request_queue *rust_loop_disk_queue(struct gendisk *disk);
unsigned int rust_loop_rq_bvecs(struct request *rq, struct bio_vec *bv);
struct bio_vec *rust_loop_rq_single_bvecs(struct request *rq, unsigned int *offset);
void rust_loop_rq_zero_fill(struct request *rq);
loff_t rust_loop_file_size(struct file *file);
void rust_loop_init_sync_kiocb(struct kiocb *kiocb, struct file *file);
void rust_loop_kiocb_start_write(struct kiocb *kiocb);
void rust_loop_kiocb_end_write(struct kiocb *kiocb);
struct gendisk *rust_loop_dev_to_disk(struct device *dev);
struct gendisk *rust_loop_bdev_disk(struct block_device *bdev);
bool rust_loop_file_is_writable(struct file *file);
bool rust_loop_file_can_direct(struct file *file);
bool rust_loop_file_nowait(struct file *file);
bool rust_loop_file_is_shmem(struct file *file);
u32 rust_loop_file_statfs_bsize(struct file *file);
struct blk_plug *rust_loop_current_plug(void);
bool rust_loop_shmem_resident(struct file *file, loff_t pos, size_t len);
bool rust_loop_file_is_odirect(struct file *file);
bool rust_loop_file_has_rw(struct file *file);
bool rust_loop_file_has_read(struct file *file);
bool rust_loop_file_has_fsync(struct file *file);
bool rust_loop_file_has_fallocate(struct file *file);
umode_t rust_loop_file_mode(struct file *file);
dev_t rust_loop_file_rdev(struct file *file);
struct block_device *rust_loop_file_bdev(struct file *file);
struct block_device *rust_loop_file_sb_bdev(struct file *file);
void rust_loop_mapping_restrict_gfp(struct file *file, gfp_t *saved);
void rust_loop_mapping_set_gfp(struct file *file, gfp_t gfp);
unsigned int rust_loop_bdev_logical_block_size(struct block_device *bdev);
unsigned int rust_loop_bdev_dma_alignment(struct block_device *bdev);
bool rust_loop_bdev_rot(struct block_device *bdev);
struct queue_limits rust_loop_limits_start_update(struct request_queue *q);
unsigned int rust_loop_freeze(struct request_queue *q);
void rust_loop_unfreeze(struct request_queue *q, unsigned int memflags);
unsigned int rust_loop_noio_save(void);
void rust_loop_noio_restore(unsigned int flags);
gfp_t rust_loop_gfp_noio(void);
struct queue_limits *rust_loop_bdev_limits(struct block_device *bdev);
bool rust_loop_bdev_commits_batches(struct block_device *bdev);
unsigned long rust_loop_spin_lock_irqsave(spinlock_t *lock);
bool rust_loop_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags);
void rust_loop_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);

struct cgroup_subsys_state;
struct mem_cgroup;
struct cgroup_subsys_state *rust_loop_rq_blkcg_css(struct request *rq);
void rust_loop_kthread_associate_blkcg(struct cgroup_subsys_state *css);
struct cgroup_subsys_state *rust_loop_memcg_css_get(struct cgroup_subsys_state *blkcg);
struct mem_cgroup *rust_loop_memcg_from_css(struct cgroup_subsys_state *css);
struct mem_cgroup *rust_loop_set_active_memcg(struct mem_cgroup *memcg);
void rust_loop_css_put(struct cgroup_subsys_state *css);
struct cgroup_subsys_state *rust_loop_rq_tenant_css_get(struct request *rq);
unsigned long rust_loop_rq_tenant_key(struct request *rq);
unsigned int rust_loop_worker_flags_set(void);
void rust_loop_worker_flags_restore(unsigned int old);
bool rust_loop_current_is_kthread(void);

#endif
