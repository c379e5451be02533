/*
 * host_swap.c - the host swap file of `cowvm compare` (host_swap.h).
 *
 * The header is the one mkswap writes (version 1, "SWAPSPACE2" at the end of the first page,
 * last_page = the number of the last page); the file is fully allocated (fallocate, then zero
 * written where fallocate is not supported), since swapon refuses files with holes.  Cleanup is
 * made of async-signal-safe calls only (swapoff, unlink, rmdir, open/write/close), so the
 * signal handlers can run it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <unistd.h>

#include "host/host_swap.h"

#define PAGE 4096u
#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"

static struct {
	volatile sig_atomic_t on;   /* swapon'ed */
	volatile sig_atomic_t made; /* the directory (and maybe the file) exist */
	char dir[64], path[96];
	char cluster[16];           /* page-cluster's text before, "" = not changed */
	bool handlers;
} hs;

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = write(fd, text, strlen(text));
	(void)n;
	close(fd);
}

static void cleanup(void)
{
	if (hs.on) {
		swapoff(hs.path);
		hs.on = 0;
	}
	if (hs.cluster[0]) {
		write_text(PAGE_CLUSTER, hs.cluster);
		hs.cluster[0] = 0;
	}
	if (hs.made) {
		unlink(hs.path);
		rmdir(hs.dir);
		hs.made = 0;
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	if (hs.handlers)
		return;
	hs.handlers = true;
	atexit(cleanup);
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT,
				    SIGFPE, SIGILL, SIGPIPE };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction sa = { .sa_handler = on_signal };
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESETHAND;
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue; /* keep what the caller ignores (nohup) */
		sigaction(sigs[i], &sa, NULL);
	}
}

static bool failed(char *why, size_t len, const char *what)
{
	snprintf(why, len, "%s: %s", what, strerror(errno));
	cleanup();
	return false;
}

/* The file: bytes of zeros (no holes) with the swap header in the first page. */
static bool make_file(uint64_t bytes, char *why, size_t len)
{
	int fd = open(hs.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return failed(why, len, "cannot create the host swap file");
	bool ok = true;
	if (fallocate(fd, 0, 0, (off_t)bytes)) {
		static const char zero[1 << 16];
		for (uint64_t off = 0; ok && off < bytes; off += sizeof zero)
			ok = pwrite(fd, zero, sizeof zero, (off_t)off) == (ssize_t)sizeof zero;
	}
	unsigned char header[PAGE];
	memset(header, 0, sizeof header);
	uint32_t version = 1, last_page = (uint32_t)(bytes / PAGE - 1);
	memcpy(header + 1024, &version, 4);       /* union swap_header: info.version */
	memcpy(header + 1028, &last_page, 4);     /* info.last_page; nr_badpages stays 0 */
	memcpy(header + PAGE - 10, "SWAPSPACE2", 10);
	ok = ok && pwrite(fd, header, PAGE, 0) == PAGE && fsync(fd) == 0;
	int error = errno;
	close(fd);
	if (!ok) {
		errno = error ? error : EIO;
		return failed(why, len, "cannot write the host swap file");
	}
	return true;
}

bool host_swap_on(uint64_t bytes, char *why, size_t len)
{
	host_swap_off();
	if (geteuid() != 0) {
		snprintf(why, len, "swapon needs root (this runs as uid %u)", (unsigned)geteuid());
		return false;
	}
	if (bytes < 10 * PAGE)
		bytes = 10 * PAGE; /* the kernel wants at least 10 pages */
	install_handlers();
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(hs.dir, sizeof hs.dir, "%s/cowvm-hostswap-XXXXXX", tmp);
	if (!mkdtemp(hs.dir))
		return failed(why, len, "cannot make a directory for the host swap file");
	snprintf(hs.path, sizeof hs.path, "%s/swapfile", hs.dir);
	hs.made = 1;
	if (!make_file(bytes, why, len))
		return false;
	/* page-cluster 0 before the device is on: no readahead of neighbouring slots */
	int fd = open(PAGE_CLUSTER, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[16];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			memcpy(hs.cluster, buf, sizeof buf);
			write_text(PAGE_CLUSTER, "0");
		}
	}
	if (swapon(hs.path, 0))
		return failed(why, len, "the host refused swapon");
	hs.on = 1;
	return true;
}

void host_swap_off(void)
{
	cleanup();
}
