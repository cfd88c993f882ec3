// SPDX-License-Identifier: GPL-2.0
/*
 * loopctl: issue one raw loop ioctl and print the outcome, so shell tests can
 * assert exact errnos (losetup hides them). Built static on the host and run in
 * the test guest. Prints "OK" (plus any result) or the errno name, exit 0 either way;
 * exit 2 on a usage error.
 *
 *   loopctl ctl-add N | ctl-remove N | ctl-get-free
 *   loopctl set-fd DEV FILE [ro|ro-direct] LOOP_SET_FD (FILE opened rw unless "ro";
 *                                          "ro-direct": O_RDONLY | O_DIRECT)
 *   loopctl configure DEV FILE FLAGS BS OFFSET SIZELIMIT [ro]
 *   loopctl change-fd DEV FILE [ro|ro-direct]
 *   loopctl dio-read-512 DEV                O_DIRECT 4 KiB read into a buffer aligned
 *                                           to 512 bytes only
 *   loopctl clr-then-io DEV                 buffered 8 KiB write, LOOP_CLR_FD, read,
 *                                           close: "OK clr=.. read=.."
 *   loopctl clr-fd DEV | set-capacity DEV | set-dio DEV 0|1 | set-bs DEV N
 *   loopctl get-status64 DEV               prints the fields
 *   loopctl get-status DEV                 legacy struct
 *   loopctl set-status64 DEV FLAGS OFFSET SIZELIMIT [NAME] [ENCTYPE] [KEYSIZE]
 *   loopctl set-status DEV FLAGS OFFSET [ENCTYPE] [KEYSIZE]
 *   loopctl raw DEV CMD ARG                 any ioctl number with an integer arg
 *   loopctl null DEV CMD                    ioctl with a NULL pointer
 *   loopctl uevents SECONDS                 print kernel uevents (ACTION@DEVPATH)
 *   loopctl hold DEV SECONDS                keep DEV open (O_RDONLY) for a while
 *   loopctl ro-open DEV CMD ARG             ioctl on a read-only fd of DEV
 *   loopctl fault-io DEV COUNT              COUNT 64 KiB direct writes and reads of DEV
 *                                           with this thread's make-it-fail set (the
 *                                           fault-injection task filter); prints
 *                                           "OK ok=N EIO=N ENOMEM=N ENOSPC=N other=N"
 *   loopctl fsync-write FILE SIZE SEED      create FILE with SIZE bytes made from SEED,
 *                                           fsync it and its directory, print "OK"
 *   loopctl check-file FILE SIZE SEED       "OK" if FILE holds exactly that, else BAD
 *   loopctl cycle DEV FILE N                N times: open DEV, LOOP_SET_FD, close; open,
 *                                           LOOP_CLR_FD, close (the detach). Prints
 *                                           "OK attach_us=.. detach_us=.." (means, in
 *                                           one process: the driver's share of an
 *                                           attach, without a program's start)
 *
 * With LOOPCTL_FAIL_NTH=N in the environment, the Nth fault-injection site reached
 * by the ioctl itself fails (/proc/thread-self/fail-nth, failslab/fail_page_alloc),
 * and a second line says "FAULT injected" or "FAULT unused" (fewer than N sites).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
#define E(x) case x: return #x
	E(EPERM); E(ENOENT); E(EINTR); E(EIO); E(ENXIO); E(EBADF); E(ENOMEM);
	E(EACCES); E(EFAULT); E(EBUSY); E(EEXIST); E(ENODEV); E(EINVAL); E(ENOTTY);
	E(EFBIG); E(ENOSPC); E(EROFS); E(ERANGE); E(ENOSYS); E(EOVERFLOW);
	E(EOPNOTSUPP); E(EAGAIN);
#undef E
	}
	return "E?";
}

static int fail_nth, fault_injected;

static void write_proc(const char *path, int v)
{
	char b[16];
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return;
	snprintf(b, sizeof(b), "%d", v);
	if (write(fd, b, strlen(b)) < 0)
		perror(path);
	close(fd);
}

/* ioctl() with the optional fail-nth fault armed around exactly this call. */
static long xioctl(int fd, unsigned long cmd, unsigned long arg)
{
	char b[16] = "";
	long r;
	int e, pf;

	if (!fail_nth)
		return ioctl(fd, cmd, arg);
	pf = open("/proc/thread-self/fail-nth", O_RDWR);
	if (pf < 0 || write(pf, b, (size_t)snprintf(b, sizeof(b), "%d", fail_nth)) < 0) {
		perror("fail-nth");
		exit(1);
	}
	r = ioctl(fd, cmd, arg);
	e = errno;
	memset(b, 0, sizeof(b));
	if (pread(pf, b, sizeof(b) - 1, 0) > 0)
		fault_injected = atoi(b) == 0;
	write_proc("/proc/thread-self/fail-nth", 0);
	close(pf);
	errno = e;
	return r;
}

static int report(long r)
{
	if (r < 0)
		printf("%s\n", ename(errno));
	else
		printf("OK %ld\n", r);
	if (fail_nth)
		printf("FAULT %s\n", fault_injected ? "injected" : "unused");
	return 0;
}

static uint64_t word(uint64_t seed, uint64_t k)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ULL + k + 1;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static int file_data(const char *path, size_t size, uint64_t seed, int write_it)
{
	uint64_t *buf = calloc(1, size + 8), *got;
	size_t k;
	int fd, dfd;
	char dir[4096], *slash;

	if (!buf)
		return 1;
	for (k = 0; k < (size + 7) / 8; k++)
		buf[k] = word(seed, k);
	if (!write_it) {
		got = calloc(1, size + 1);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return printf("BAD open: %s\n", ename(errno)), 0;
		if (read(fd, got, size + 1) != (ssize_t)size || memcmp(got, buf, size))
			return printf("BAD content\n"), 0;
		return printf("OK\n"), 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size || fsync(fd))
		return printf("write %s: %s\n", path, ename(errno)), 1;
	close(fd);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd))
		return printf("fsync dir: %s\n", ename(errno)), 1;
	close(dfd);
	return printf("OK\n"), 0;
}

static int fault_io(int fd, int count)
{
	int ok = 0, eio = 0, enomem = 0, enospc = 0, other = 0, i;
	void *buf;

	if (posix_memalign(&buf, 4096, 65536))
		return 1;
	memset(buf, 0x5a, 65536);
	write_proc("/proc/thread-self/make-it-fail", 1);
	for (i = 0; i < count; i++) {
		off_t off = (off_t)(i / 2 % 64) * 65536;
		ssize_t n = i % 2 ? pread(fd, buf, 65536, off) : pwrite(fd, buf, 65536, off);

		if (n == 65536)
			ok++;
		else if (n < 0 && errno == EIO)
			eio++;
		else if (n < 0 && errno == ENOMEM)
			enomem++;
		else if (n < 0 && errno == ENOSPC)
			enospc++;
		else
			other++;
	}
	write_proc("/proc/thread-self/make-it-fail", 0);
	printf("OK ok=%d EIO=%d ENOMEM=%d ENOSPC=%d other=%d\n", ok, eio, enomem, enospc, other);
	return 0;
}

static int xopen(const char *p, int flags)
{
	int fd = open(p, flags);

	if (fd < 0) {
		printf("open %s: %s\n", p, ename(errno));
		exit(1);
	}
	return fd;
}

/* FILE's open mode: "ro", "ro-direct" (O_RDONLY | O_DIRECT), else read-write. */
static int open_backing(const char *p, int argc, char **argv, int i)
{
	const char *m = argc > i ? argv[i] : "";

	if (!strcmp(m, "ro-direct"))
		return xopen(p, O_RDONLY | O_DIRECT);
	return xopen(p, !strcmp(m, "ro") ? O_RDONLY : O_RDWR);
}

/*
 * The sole opener detaches and goes on: 8 KiB of 0x5a written buffered at 0 (not
 * synced), LOOP_CLR_FD, then a buffered 4 KiB read at 1 MiB, then the last close
 * (which writes the 8 KiB back). Prints "OK clr=.. read=..".
 */
static int clr_then_io(int fd)
{
	static char buf[8192];
	int clr, rd;

	memset(buf, 0x5a, sizeof(buf));
	if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		printf("write %s\n", ename(errno));
		return 0;
	}
	clr = ioctl(fd, LOOP_CLR_FD, 0) < 0 ? errno : 0;
	rd = pread(fd, buf, 4096, 1 << 20) == 4096 ? 0 : errno ? errno : EIO;
	close(fd);
	printf("OK clr=%s read=%s\n", clr ? ename(clr) : "OK", rd ? ename(rd) : "OK");
	return 0;
}

/* An O_DIRECT read of 4 KiB at 0 into a buffer aligned to 512 bytes but not 1024. */
static int dio_read_512(const char *dev)
{
	int fd = xopen(dev, O_RDONLY | O_DIRECT);
	char *mem;

	if (posix_memalign((void **)&mem, 4096, 8192))
		return 1;
	return report(pread(fd, mem + 512, 4096, 0) == 4096 ? 0 : -1);
}

static unsigned long long num(const char *s)
{
	return strtoull(s, NULL, 0);
}

static void print_info64(const struct loop_info64 *i)
{
	printf("OK number=%u device=%llu inode=%llu rdevice=%llu offset=%llu sizelimit=%llu flags=%u encrypt_type=%u name=%.64s\n",
	       i->lo_number, (unsigned long long)i->lo_device,
	       (unsigned long long)i->lo_inode, (unsigned long long)i->lo_rdevice,
	       (unsigned long long)i->lo_offset, (unsigned long long)i->lo_sizelimit,
	       i->lo_flags, i->lo_encrypt_type, (const char *)i->lo_file_name);
}

static int uevents(int secs)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	char buf[8192];
	time_t end = time(NULL) + secs;
	int s = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);

	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("netlink: %s\n", ename(errno));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	while (time(NULL) < end) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(s, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		/* First string is ACTION@DEVPATH, then KEY=VALUE strings. */
		printf("%s", buf);
		for (char *k = buf + strlen(buf) + 1; k < buf + n; k += strlen(k) + 1)
			if (!strncmp(k, "DISK_MEDIA_CHANGE=", 18) || !strncmp(k, "RESIZE=", 7) ||
			    !strncmp(k, "DISK_RO=", 8) ||
			    !strncmp(k, "DEVTYPE=", 8) || !strncmp(k, "MAJOR=", 6) ||
			    !strncmp(k, "MINOR=", 6))
				printf(" %s", k);
		printf("\n");
		fflush(stdout);
	}
	return 0;
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cycle(const char *dev, const char *file, int n)
{
	int bfd = xopen(file, O_RDWR);
	double attach = 0, detach = 0;

	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		int fd = xopen(dev, O_RDWR);

		if (ioctl(fd, LOOP_SET_FD, bfd))
			return report(-1);
		close(fd);
		double t1 = now_us();

		fd = xopen(dev, O_RDWR);
		if (ioctl(fd, LOOP_CLR_FD, 0))
			return report(-1);
		close(fd);
		attach += t1 - t0;
		detach += now_us() - t1;
	}
	printf("OK attach_us=%.1f detach_us=%.1f\n", attach / n, detach / n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	int fd, bfd;

	if (getenv("LOOPCTL_FAIL_NTH"))
		fail_nth = atoi(getenv("LOOPCTL_FAIL_NTH"));

	if (!strcmp(op, "ctl-add") || !strcmp(op, "ctl-remove") || !strcmp(op, "ctl-get-free")) {
		long cmd = op[4] == 'a' ? LOOP_CTL_ADD : op[4] == 'r' ? LOOP_CTL_REMOVE : LOOP_CTL_GET_FREE;

		fd = xopen("/dev/loop-control", O_RDWR);
		return report(xioctl(fd, (unsigned long)cmd, argc > 2 ? strtol(argv[2], NULL, 0) : 0));
	}
	if (!strcmp(op, "uevents") && argc > 2)
		return uevents(atoi(argv[2]));
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of loopctl.c\n");
		return 2;
	}
	if (!strcmp(op, "ro-open")) {
		fd = xopen(argv[2], O_RDONLY);
		return report(ioctl(fd, num(argv[3]), num(argv[4])));
	}
	if ((!strcmp(op, "fsync-write") || !strcmp(op, "check-file")) && argc > 4)
		return file_data(argv[2], num(argv[3]), num(argv[4]), op[0] == 'f');
	if (!strcmp(op, "dio-read-512"))
		return dio_read_512(argv[2]);
	if (!strcmp(op, "clr-then-io"))
		return clr_then_io(xopen(argv[2], O_RDWR));
	if (!strcmp(op, "fault-io") && argc > 3)
		return fault_io(xopen(argv[2], O_RDWR | O_DIRECT), atoi(argv[3]));
	if (!strcmp(op, "cycle") && argc > 4)
		return cycle(argv[2], argv[3], atoi(argv[4]));
	fd = xopen(argv[2], O_RDWR);
	if (!strcmp(op, "set-fd") && argc > 3) {
		bfd = open_backing(argv[3], argc, argv, 4);
		return report(xioctl(fd, LOOP_SET_FD, bfd));
	}
	if (!strcmp(op, "change-fd") && argc > 3) {
		bfd = open_backing(argv[3], argc, argv, 4);
		return report(xioctl(fd, LOOP_CHANGE_FD, bfd));
	}
	if (!strcmp(op, "configure") && argc > 7) {
		struct loop_config c = { 0 };

		c.fd = open_backing(argv[3], argc, argv, 8);
		c.info.lo_flags = num(argv[4]);
		c.block_size = num(argv[5]);
		c.info.lo_offset = num(argv[6]);
		c.info.lo_sizelimit = num(argv[7]);
		snprintf((char *)c.info.lo_file_name, LO_NAME_SIZE, "%s", argv[3]);
		return report(xioctl(fd, LOOP_CONFIGURE, (unsigned long)&c));
	}
	if (!strcmp(op, "clr-fd"))
		return report(xioctl(fd, LOOP_CLR_FD, 0));
	if (!strcmp(op, "set-capacity"))
		return report(xioctl(fd, LOOP_SET_CAPACITY, 0));
	if (!strcmp(op, "set-dio") && argc > 3)
		return report(xioctl(fd, LOOP_SET_DIRECT_IO, num(argv[3])));
	if (!strcmp(op, "set-bs") && argc > 3)
		return report(xioctl(fd, LOOP_SET_BLOCK_SIZE, num(argv[3])));
	if (!strcmp(op, "get-status64")) {
		struct loop_info64 i;

		memset(&i, 0xa5, sizeof(i));
		if (ioctl(fd, LOOP_GET_STATUS64, &i) < 0)
			return report(-1);
		print_info64(&i);
		return 0;
	}
	if (!strcmp(op, "get-status")) {
		struct loop_info i;

		if (ioctl(fd, LOOP_GET_STATUS, &i) < 0)
			return report(-1);
		printf("OK number=%d offset=%d flags=%d name=%.64s\n", i.lo_number,
		       i.lo_offset, i.lo_flags, i.lo_name);
		return 0;
	}
	if (!strcmp(op, "set-status64") && argc > 5) {
		struct loop_info64 i;

		if (ioctl(fd, LOOP_GET_STATUS64, &i) < 0)
			memset(&i, 0, sizeof(i));
		i.lo_flags = num(argv[3]);
		i.lo_offset = num(argv[4]);
		i.lo_sizelimit = num(argv[5]);
		if (argc > 6)
			snprintf((char *)i.lo_file_name, LO_NAME_SIZE, "%s", argv[6]);
		if (argc > 7)
			i.lo_encrypt_type = num(argv[7]);
		if (argc > 8)
			i.lo_encrypt_key_size = num(argv[8]);
		return report(xioctl(fd, LOOP_SET_STATUS64, (unsigned long)&i));
	}
	if (!strcmp(op, "set-status") && argc > 4) {
		struct loop_info i;

		if (ioctl(fd, LOOP_GET_STATUS, &i) < 0)
			memset(&i, 0, sizeof(i));
		i.lo_flags = num(argv[3]);
		i.lo_offset = num(argv[4]);
		if (argc > 5)
			i.lo_encrypt_type = num(argv[5]);
		if (argc > 6)
			i.lo_encrypt_key_size = num(argv[6]);
		return report(xioctl(fd, LOOP_SET_STATUS, (unsigned long)&i));
	}
	if (!strcmp(op, "raw") && argc > 4)
		return report(ioctl(fd, num(argv[3]), num(argv[4])));
	if (!strcmp(op, "null") && argc > 3)
		return report(ioctl(fd, num(argv[3]), NULL));
	if (!strcmp(op, "hold") && argc > 3) {
		sleep(atoi(argv[3]));
		return 0;
	}
	fprintf(stderr, "loopctl: unknown or incomplete command %s\n", op);
	return 2;
}
