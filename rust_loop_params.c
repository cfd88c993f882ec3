// SPDX-License-Identifier: GPL-2.0
/*
 * The module parameters, with loop.ko's names, types, modes (0444: visible under
 * /sys/module/rust_loop/parameters/) and checks. In C because the `kernel`
 * crate's `module!` registers parameters with mode 0, which hides them from sysfs.
 * The Rust side reads the values through kapi/params.rs.
 */
#include <linux/kconfig.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>

#ifdef CONFIG_BLK_DEV_LOOP_MIN_COUNT
#define RL_MIN_COUNT CONFIG_BLK_DEV_LOOP_MIN_COUNT
#else
#define RL_MIN_COUNT 8
#endif

int rust_loop_max_loop = RL_MIN_COUNT;
module_param_named(max_loop, rust_loop_max_loop, int, 0444);
MODULE_PARM_DESC(max_loop, "Initial number of loop devices (more are made on demand)");

int rust_loop_max_part;
module_param_named(max_part, rust_loop_max_part, int, 0444);
MODULE_PARM_DESC(max_part, "Maximum number of partitions per loop device");

int rust_loop_hw_queue_depth = 128;

/*
 * loop.ko's check: an integer of at least 1, else the load fails with EINVAL.
 * Called by the kernel's parameter parser through the ops below, not from Rust.
 */
static int rust_loop_set_hw_queue_depth(const char *s, const struct kernel_param *p)
{
	int qd, ret;

	ret = kstrtoint(s, 0, &qd);
	if (ret < 0)
		return ret;
	if (qd < 1)
		return -EINVAL;
	rust_loop_hw_queue_depth = qd;
	return 0;
}

static const struct kernel_param_ops rust_loop_hw_queue_depth_ops = {
	.set = rust_loop_set_hw_queue_depth,
	.get = param_get_int,
};

module_param_cb(hw_queue_depth, &rust_loop_hw_queue_depth_ops, &rust_loop_hw_queue_depth, 0444);
MODULE_PARM_DESC(hw_queue_depth, "Queue depth for each hardware queue. Default: 128");
