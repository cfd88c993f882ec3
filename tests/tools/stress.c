// SPDX-License-Identifier: GPL-2.0
/*
 * stress: hammer the loop driver from many processes at once, for a bounded time.
 *
 *   stress SECONDS NDEV FILE...
 *
 * Forks privileged and unprivileged workers. Privileged ones pick a random device
 * among /dev/loop0..NDEV-1 and a random operation: attach (SET_FD, CONFIGURE with
 * random flags, block size, offset and sizelimit), detach, SET_STATUS64, GET_STATUS,
 * CHANGE_FD, SET_CAPACITY, SET_BLOCK_SIZE, SET_DIRECT_IO, partition rescans, open and
 * close, buffered and direct I/O, flush and discard, loop-control ADD/REMOVE/GET_FREE,
 * and random ioctl numbers with random arguments (integers, buffers of random bytes,
 * bad pointers). Unprivileged workers (uid 65534) do I/O and random ioctls through
 * descriptors opened before dropping privileges, as a process handed such an fd would.
 *
 * Nothing is asserted about individual results (the mix is chaotic by design); the
 * run fails when a worker dies from a signal, when a worker does not finish within
 * 60 s of the deadline (a hang), or when no operation at all succeeded. The summary
 * line is "ops=N ok=N failed=N workers=N" followed by the count of each errno.
 * Exit status: 0 on success, 1 on failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPRIV 6
#define NUNPRIV 2
#define NWORKERS (NPRIV + NUNPRIV)
#define MAXERR 134

struct counts {
	unsigned long ops, ok, failed;
	unsigned long err[MAXERR];
	unsigned long by_op[32];
};

static struct counts *shared; /* one slot per worker, in shared memory */
static int ndev, nfiles;
static char **files;
static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic per worker, good enough for a fuzzer */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static unsigned int pick(unsigned int n)
{
	return (unsigned int)(rnd() % n);
}

static void devname(char *buf, size_t len, int i)
{
	snprintf(buf, len, "/dev/loop%d", i);
}

static void count(struct counts *c, int op, long r)
{
	c->ops++;
	c->by_op[op]++;
	if (r < 0) {
		c->failed++;
		c->err[errno > 0 && errno < MAXERR ? errno : 0]++;
	} else {
		c->ok++;
	}
}

static int open_dev(int i, int flags)
{
	char p[32];

	devname(p, sizeof(p), i);
	return open(p, flags | O_CLOEXEC);
}

static int open_file(int rdonly)
{
	return open(files[pick(nfiles)], (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
}

/* An ioctl argument: an integer, a buffer of random bytes, or a bad pointer. */
static unsigned long random_arg(unsigned char *buf, size_t len, int *fds, int nfds)
{
	size_t i;

	switch (pick(6)) {
	case 0:
		return 0;
	case 1:
		return pick(16);
	case 2:
		return nfds ? (unsigned long)fds[pick(nfds)] : 3;
	case 3:
		return 0xdead000UL;
	case 4:
		return 0xffff888000000000UL;
	default:
		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)rnd();
		/* Keep an fd-sized first field plausible half of the time (LOOP_CONFIGURE). */
		if (nfds && pick(2))
			memcpy(buf, &fds[pick(nfds)], sizeof(int));
		return (unsigned long)buf;
	}
}

static unsigned long random_cmd(void)
{
	switch (pick(10)) {
	case 0:
		return (unsigned long)(uint32_t)rnd();
	case 1:
		return 0x4C80 + pick(4); /* loop-control numbers on a block device */
	case 2:
		return 0x1200 + pick(0x80); /* generic block ioctls */
	default:
		return 0x4C00 + pick(12); /* loop ioctls, one past the last */
	}
}

static void random_info(struct loop_info64 *li)
{
	static const unsigned int fl[] = { 0, LO_FLAGS_AUTOCLEAR, LO_FLAGS_PARTSCAN, LO_FLAGS_READ_ONLY,
					   LO_FLAGS_DIRECT_IO, LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN };

	memset(li, 0, sizeof(*li));
	li->lo_flags = fl[pick(6)];
	li->lo_offset = pick(4) ? 0 : (uint64_t)pick(2048) * 512;
	li->lo_sizelimit = pick(3) ? 0 : (uint64_t)(1 + pick(8192)) * 512;
	snprintf((char *)li->lo_file_name, sizeof(li->lo_file_name), "stress-%u", pick(100));
}

static void do_io(struct counts *c, int fd, int op)
{
	static const size_t sizes[] = { 512, 4096, 16384, 65536, 131072 };
	void *buf;
	size_t n = sizes[pick(5)];
	off_t off = (off_t)pick(32768) * 512;
	long r;

	if (posix_memalign(&buf, 4096, n))
		return;
	memset(buf, (int)pick(256), n);
	r = pick(2) ? pread(fd, buf, n, off) : pwrite(fd, buf, n, off);
	count(c, op, r);
	free(buf);
}

static void privileged_op(struct counts *c)
{
	static const unsigned long bsizes[] = { 512, 1024, 2048, 4096, 8192, 3000 };
	unsigned char buf[4096];
	struct loop_info64 li;
	struct loop_config cfg;
	int op = (int)pick(18), dev = (int)pick(ndev), fd, ffd, ctl, fds[2];
	long r;

	fd = open_dev(dev, (pick(8) ? O_RDWR : O_RDONLY) | (pick(3) ? 0 : O_DIRECT));
	if (fd < 0 && op != 14) {
		count(c, 31, -1);
		if (errno == ENOENT || errno == ENXIO) {
			/* the device was removed: add it back */
			ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
			if (ctl >= 0) {
				count(c, 14, ioctl(ctl, LOOP_CTL_ADD, dev));
				close(ctl);
			}
		}
		return;
	}
	switch (op) {
	case 0:
		ffd = open_file(pick(4) == 0);
		count(c, op, ioctl(fd, LOOP_SET_FD, ffd));
		close(ffd);
		break;
	case 1:
		memset(&cfg, 0, sizeof(cfg));
		ffd = open_file(pick(4) == 0);
		cfg.fd = (uint32_t)ffd;
		cfg.block_size = (uint32_t)(pick(2) ? 0 : bsizes[pick(6)]);
		random_info(&cfg.info);
		count(c, op, ioctl(fd, LOOP_CONFIGURE, &cfg));
		close(ffd);
		break;
	case 2:
		count(c, op, ioctl(fd, LOOP_CLR_FD, 0));
		break;
	case 3:
		random_info(&li);
		count(c, op, ioctl(fd, LOOP_SET_STATUS64, &li));
		break;
	case 4:
		count(c, op, ioctl(fd, pick(2) ? LOOP_GET_STATUS64 : LOOP_GET_STATUS, buf));
		break;
	case 5:
		ffd = open_file(pick(2));
		count(c, op, ioctl(fd, LOOP_CHANGE_FD, ffd));
		close(ffd);
		break;
	case 6:
		count(c, op, ioctl(fd, LOOP_SET_CAPACITY, 0));
		break;
	case 7:
		count(c, op, ioctl(fd, LOOP_SET_BLOCK_SIZE, bsizes[pick(6)]));
		break;
	case 8:
		count(c, op, ioctl(fd, LOOP_SET_DIRECT_IO, pick(2)));
		break;
	case 9:
		count(c, op, ioctl(fd, BLKRRPART, 0));
		break;
	case 10:
	case 11:
	case 12:
		do_io(c, fd, op);
		break;
	case 13:
		if (pick(2)) {
			count(c, op, fsync(fd));
		} else {
			uint64_t range[2] = { (uint64_t)pick(64) * 4096, 65536 };

			count(c, op, ioctl(fd, BLKDISCARD, range));
		}
		break;
	case 14:
		ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
		if (ctl < 0) {
			count(c, op, -1);
			break;
		}
		switch (pick(3)) {
		case 0:
			count(c, op, ioctl(ctl, LOOP_CTL_ADD, pick(ndev + 4)));
			break;
		case 1:
			count(c, op, ioctl(ctl, LOOP_CTL_REMOVE, pick(ndev + 4)));
			break;
		default:
			count(c, op, ioctl(ctl, LOOP_CTL_GET_FREE));
		}
		close(ctl);
		break;
	case 15:
		/* open and close in a burst, racing with the others' detach and rescan */
		for (r = 0; r < 8; r++) {
			int f2 = open_dev(dev, O_RDONLY);

			count(c, op, f2);
			if (f2 >= 0)
				close(f2);
		}
		break;
	default:
		fds[0] = fd;
		fds[1] = open_file(0);
		count(c, 16, ioctl(fd, random_cmd(), random_arg(buf, sizeof(buf), fds, fds[1] >= 0 ? 2 : 1)));
		if (fds[1] >= 0)
			close(fds[1]);
	}
	if (fd >= 0)
		close(fd);
}

static void unprivileged_loop(struct counts *c, time_t deadline)
{
	unsigned char buf[4096];
	int fds[64], nfds = 0, i;

	for (i = 0; i < ndev && nfds < 63; i++) {
		int fd = open_dev(i, O_RDWR);

		if (fd >= 0)
			fds[nfds++] = fd;
	}
	fds[nfds] = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (fds[nfds] >= 0)
		nfds++;
	if (setgid(65534) || setuid(65534))
		_exit(3);
	while (time(NULL) < deadline && nfds) {
		int fd = fds[pick(nfds)];

		if (pick(3) == 0)
			do_io(c, fd, 20);
		else
			count(c, 21, ioctl(fd, random_cmd(), random_arg(buf, sizeof(buf), fds, nfds)));
	}
}

static void worker(int id, time_t deadline)
{
	struct counts *c = &shared[id];

	rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1) ^ (uint64_t)time(NULL);
	if (id >= NPRIV) {
		unprivileged_loop(c, deadline);
		_exit(0);
	}
	while (time(NULL) < deadline)
		privileged_op(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct counts total = { 0 };
	pid_t pids[NWORKERS];
	int secs, i, j, bad = 0, alive;
	time_t deadline, hard;

	if (argc < 4)
		return fprintf(stderr, "usage: stress SECONDS NDEV FILE...\n"), 2;
	secs = atoi(argv[1]);
	ndev = atoi(argv[2]);
	files = argv + 3;
	nfiles = argc - 3;
	shared = mmap(NULL, sizeof(*shared) * NWORKERS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return perror("mmap"), 1;
	deadline = time(NULL) + secs;
	hard = deadline + 60;
	for (i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			worker(i, deadline);
	}
	for (alive = NWORKERS; alive;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			alive--;
			if (WIFSIGNALED(st)) {
				printf("# worker %d died from signal %d\n", (int)p, WTERMSIG(st));
				bad = 1;
			} else if (WEXITSTATUS(st)) {
				printf("# worker %d exited with %d\n", (int)p, WEXITSTATUS(st));
				bad = 1;
			}
			continue;
		}
		if (time(NULL) > hard) {
			printf("# %d workers still running 60 s after the deadline: hang\n", alive);
			for (i = 0; i < NWORKERS; i++)
				kill(pids[i], SIGKILL);
			bad = 1;
			break;
		}
		usleep(100000);
	}
	for (i = 0; i < NWORKERS; i++) {
		total.ops += shared[i].ops;
		total.ok += shared[i].ok;
		total.failed += shared[i].failed;
		for (j = 0; j < MAXERR; j++)
			total.err[j] += shared[i].err[j];
	}
	printf("ops=%lu ok=%lu failed=%lu workers=%d", total.ops, total.ok, total.failed, NWORKERS);
	for (j = 0; j < MAXERR; j++)
		if (total.err[j])
			printf(" %s=%lu", j ? strerrorname_np(j) : "E?", total.err[j]);
	printf("\n");
	if (!total.ok) {
		printf("# no operation succeeded\n");
		bad = 1;
	}
	return bad;
}
