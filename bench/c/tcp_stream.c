/* The C baseline of bench/tcp-stream.ts: one TCP stream sent through liburing the way bun-uring's
 * ZcSender sends it (a chain of `batch` sends linked with IOSQE_IO_LINK and MSG_WAITALL, the next
 * chain once the previous one has reported "sent", notifications counted as they come), and the
 * plain copying receiver every sender of the benchmark is measured against.
 *
 *   tcp_stream send MODE HOST PORT SIZE SECONDS BATCH   MODE: send | zc | zc-fixed | send-gather | zc-gather
 *       send-gather / zc-gather: the chain's `batch` payloads gathered into one SENDMSG /
 *       SENDMSG_ZC with `batch` iovecs, as ZcSender gathers consecutive sends of one kind
 *       prints {"bytes":N,"seconds":S,"cpu_s":U,"sends":K,"notifs":M,"copied":C}
 *   tcp_stream recv HOST PORT
 *       prints "listening PORT", then {"bytes":N} when the peer closes; on SIGUSR1 it prints
 *       {"progress":N}, the bytes received so far (the benchmark's alternating-slice runs read
 *       the count at each slice boundary)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
	fprintf(stderr, "tcp_stream: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Fill a sockaddr for a numeric IPv4 or IPv6 host. */
static socklen_t addr_of(const char *host, int port, struct sockaddr_storage *ss) {
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return sizeof(*a4);
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return sizeof(*a6);
	}
	fprintf(stderr, "tcp_stream: not a numeric address: %s\n", host);
	exit(2);
}

static volatile sig_atomic_t report_progress;

static void on_usr1(int sig) {
	(void)sig;
	report_progress = 1;
}

static int do_recv(const char *host, int port) {
	/* No SA_RESTART: a blocked recv() returns EINTR, and the receive timeout below bounds the
	 * wait when the signal lands just before recv() is entered. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	struct sockaddr_storage ss;
	socklen_t len = addr_of(host, port, &ss);
	int l = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
	if (l < 0) die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&ss, len) < 0) die("bind");
	if (listen(l, 1) < 0) die("listen");
	len = sizeof(ss);
	getsockname(l, (struct sockaddr *)&ss, &len);
	printf("listening %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	int fd = accept(l, NULL, NULL);
	if (fd < 0) die("accept");
	int rcvbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct timeval tick = { .tv_sec = 0, .tv_usec = 20000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	unsigned long long total = 0;
	for (;;) {
		/* A copying receive: the bytes land in user memory, as an application's would. */
		ssize_t n = recv(fd, buf, cap, 0);
		if (n > 0) total += n;
		if (report_progress) {
			report_progress = 0;
			printf("{\"progress\":%llu}\n", total);
			fflush(stdout);
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
		if (n <= 0) break;
	}
	printf("{\"bytes\":%llu}\n", total);
	return 0;
}

static int do_send(const char *mode, const char *host, int port, size_t size, double seconds, unsigned batch) {
	int gather = !strcmp(mode, "send-gather") || !strcmp(mode, "zc-gather");
	int zc = !strcmp(mode, "zc") || !strcmp(mode, "zc-fixed") || !strcmp(mode, "zc-gather"), fixed = strcmp(mode, "zc-fixed") == 0;
	if (!zc && strcmp(mode, "send") != 0 && strcmp(mode, "send-gather") != 0) return 2;
	struct sockaddr_storage ss;
	socklen_t len = addr_of(host, port, &ss);
	/* SO_SNDBUF stays at the kernel's default, as on every sender of the benchmark. */
	int fd = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
	if (fd < 0) die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) die("connect");

	struct io_uring ring;
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
	if (io_uring_queue_init_params(512, &ring, &p) < 0) die("io_uring_queue_init_params");
	char *buf;
	if (posix_memalign((void **)&buf, 4096, size)) die("posix_memalign");
	for (size_t i = 0; i < size; i++) buf[i] = (char)(i * 7 + 1);
	if (fixed) {
		struct iovec iov = {buf, size};
		int r = io_uring_register_buffers(&ring, &iov, 1);
		if (r < 0) { errno = -r; die("io_uring_register_buffers"); }
	}

	/* Gathered modes: one msghdr whose `batch` iovecs all point at the payload. */
	struct iovec iovs[256];
	for (unsigned i = 0; i < batch; i++) {
		iovs[i].iov_base = buf;
		iovs[i].iov_len = size;
	}
	struct msghdr msg = {0};
	msg.msg_iov = iovs;
	msg.msg_iovlen = batch;
	unsigned ops = gather ? 1 : batch;

	unsigned long long bytes = 0, sends = 0, notifs = 0, copied = 0, pending_notifs = 0;
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	double start = now_s(), end = start + seconds;
	while (now_s() < end) {
		for (unsigned i = 0; i < ops; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (gather && !zc) io_uring_prep_sendmsg(sqe, fd, &msg, MSG_WAITALL);
			else if (gather) io_uring_prep_sendmsg_zc(sqe, fd, &msg, MSG_WAITALL);
			else if (!zc) io_uring_prep_send(sqe, fd, buf, size, MSG_WAITALL);
			else if (fixed) io_uring_prep_send_zc_fixed(sqe, fd, buf, size, MSG_WAITALL, 0, 0);
			else io_uring_prep_send_zc(sqe, fd, buf, size, MSG_WAITALL, 0);
			if (zc) sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
			if (i + 1 < ops) sqe->flags |= IOSQE_IO_LINK;
			sqe->user_data = 1;
		}
		/* Wait for the chain's "sent" CQEs; notifications are reaped as they come, never waited for. */
		unsigned sent = 0;
		io_uring_submit(&ring);
		while (sent < ops) {
			struct io_uring_cqe *cqe;
			int r = io_uring_wait_cqe(&ring, &cqe);
			/* A signal (SIGCONT after the benchmark's SIGSTOP) ends the wait early: wait again. */
			if (r == -EINTR) continue;
			if (r < 0) { errno = -r; die("io_uring_wait_cqe"); }
			unsigned head, n = 0;
			io_uring_for_each_cqe(&ring, head, cqe) {
				n++;
				if (cqe->flags & IORING_CQE_F_NOTIF) {
					notifs++;
					pending_notifs--;
					if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) copied++;
					continue;
				}
				if (cqe->res < 0) { errno = -cqe->res; die("send"); }
				if (cqe->flags & IORING_CQE_F_MORE) pending_notifs++;
				bytes += cqe->res;
				sends++;
				sent++;
			}
			io_uring_cq_advance(&ring, n);
		}
	}
	double elapsed = now_s() - start;
	getrusage(RUSAGE_SELF, &ru1);
	double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
		     (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	while (pending_notifs > 0) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&ring, &cqe);
		if (r == -EINTR) continue;
		if (r < 0) break;
		if (cqe->flags & IORING_CQE_F_NOTIF) {
			notifs++;
			pending_notifs--;
			if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) copied++;
		}
		io_uring_cqe_seen(&ring, cqe);
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	io_uring_queue_exit(&ring);
	printf("{\"bytes\":%llu,\"seconds\":%.6f,\"cpu_s\":%.6f,\"sends\":%llu,\"notifs\":%llu,\"copied\":%llu}\n", bytes, elapsed, cpu, sends, notifs, copied);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 4 && !strcmp(argv[1], "recv")) return do_recv(argv[2], atoi(argv[3]));
	if (argc == 8 && !strcmp(argv[1], "send")) {
		unsigned batch = (unsigned)atoi(argv[7]);
		if (batch < 1 || batch > 256) batch = 8;
		return do_send(argv[2], argv[3], atoi(argv[4]), (size_t)atol(argv[5]), atof(argv[6]), batch);
	}
	fprintf(stderr, "usage: tcp_stream send send|zc|zc-fixed|send-gather|zc-gather HOST PORT SIZE SECONDS BATCH\n       tcp_stream recv HOST PORT\n");
	return 2;
}
