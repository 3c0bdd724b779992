/* The C side of bench/server.ts: the floor server (an epoll echo server) and the one load
 * generator every server of the benchmark is driven by (an epoll client). Plain syscalls, one
 * thread each, no io_uring: the server is what a careful C programmer writes in an afternoon, the
 * client is cheaper per message than any of the servers it drives.
 *
 *   echo_epoll serve HOST PORT
 *       prints "listening PORT" and echoes every byte on every connection until killed.
 *       Listener: SO_REUSEADDR, backlog 511. Accepted sockets: TCP_NODELAY, buffers at the
 *       kernel's defaults (autotuned).
 *   echo_epoll client HOST PORT CONNS MIN_BYTES MAX_BYTES WARMUP_MS MEASURE_MS SEED [SERVER_PID]
 *       opens CONNS connections (TCP_NODELAY, default buffers) in batches of 100, each batch's
 *       connections completing one message before the next batch connects (so no listen backlog
 *       overflows). Then each connection, in turn and forever: sends one message of a size drawn
 *       from MIN_BYTES..MAX_BYTES, reads its echo back, compares every byte with what it sent,
 *       starts the next. One message in flight per connection. After WARMUP_MS it counts for
 *       MEASURE_MS: messages completed, bytes echoed (received and verified), each message's
 *       round-trip time; then it stops starting messages, lets the ones in flight finish and
 *       checks them too. The sizes and contents depend only on SEED and the connection's index,
 *       so every server gets the same workload. With SERVER_PID it also reads that process's CPU
 *       time (/proc/PID/stat) at both ends of the counted window.
 *       prints one line: {"ok":true,"messages":M,"bytes":B,"seconds":S,"p50_us":..,"p99_us":..,
 *       "samples":N,"verified_bytes":V,"client_cpu_s":C,"server_user_s":U,"server_sys_s":Y}
 *       (server times -1 without SERVER_PID) or {"ok":false,"error":"..."} (a byte
 *       that differs, a connection closed or reset, no progress for 10 s); exit status 0 or 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 511
#define MAX_EVENTS 256
/* Message contents are slices of one random pattern: PATTERN_SPAN possible starts, each followed
 * by up to MAX_MESSAGE bytes. A server that echoes a stale or recycled buffer sends bytes of
 * another slice, which differ. */
#define PATTERN_SPAN (4u << 20)
#define MAX_MESSAGE (1u << 20)
#define CONNECT_BATCH 100
#define STALL_MS 10000
#define MAX_SAMPLES (4u << 20)

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_s(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A process's user and system CPU seconds from /proc/PID/stat (fields 14 and 15, in clock ticks);
 * -1 when it cannot be read. */
static void proc_cpu(int pid, double *user, double *sys) {
	*user = *sys = -1;
	if (pid <= 0) return;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *fp = fopen(path, "r");
	if (fp == NULL) return;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long ut, st;
	/* After the command name: state, then fields 4..13, then utime and stime. */
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
		long hz = sysconf(_SC_CLK_TCK);
		*user = (double)ut / hz;
		*sys = (double)st / hz;
	}
}

/* The client reports every failure as one JSON line (the benchmark records it against the server);
 * the server only needs a message on stderr. */
static int client_mode;

static void fail(const char *fmt, ...) {
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (client_mode) {
		for (char *p = msg; *p; p++)
			if (*p == '"' || *p == '\\' || *p < 0x20) *p = ' ';
		printf("{\"ok\":false,\"error\":\"%s\"}\n", msg);
		fflush(stdout);
	} else {
		fprintf(stderr, "echo_epoll: %s\n", msg);
	}
	exit(1);
}

static void set_int(int fd, int level, int name, int value, const char *what) {
	if (setsockopt(fd, level, name, &value, sizeof value) < 0) fail("setsockopt %s: %s", what, strerror(errno));
}

static struct sockaddr_in address(const char *host, int port) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) fail("%s is not a numeric IPv4 address", host);
	return a;
}

/* Room for one descriptor per connection plus a few: 1,000 connections pass the usual soft limit. */
static void raise_fd_limit(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void epoll_set(int ep, int op, int fd, uint32_t events, void *ptr) {
	struct epoll_event ev = {.events = events, .data.ptr = ptr};
	if (epoll_ctl(ep, op, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

/* ---- the server ---- */

struct sconn {
	int fd;
	/* Bytes read but not yet written back: buf[off..len). While any wait, the connection waits
	 * for EPOLLOUT only and reads nothing more (the peer's own flow control holds the rest). */
	size_t off, len;
	char buf[65536];
};

static void sconn_close(struct sconn *c) {
	close(c->fd);
	free(c);
}

/* Write what waits; 1 when all of it is out, 0 when the socket is full, -1 on error. */
static int sconn_flush(struct sconn *c) {
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (w < 0) return errno == EAGAIN ? 0 : -1;
		c->off += w;
	}
	c->off = c->len = 0;
	return 1;
}

static _Noreturn void serve(const char *host, int port) {
	struct sockaddr_in a = address(host, port);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0) fail("socket: %s", strerror(errno));
	set_int(lfd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) fail("bind %s:%d: %s", host, port, strerror(errno));
	if (listen(lfd, BACKLOG) < 0) fail("listen: %s", strerror(errno));
	socklen_t alen = sizeof a;
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	printf("listening %d\n", ntohs(a.sin_port));
	fflush(stdout);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) fail("epoll_create1: %s", strerror(errno));
	epoll_set(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, NULL);
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR) continue;
			fail("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
					c = malloc(sizeof *c);
					if (c == NULL) fail("out of memory");
					c->fd = fd;
					c->off = c->len = 0;
					epoll_set(ep, EPOLL_CTL_ADD, fd, EPOLLIN, c);
				}
				continue;
			}
			if (c->len > 0) {
				int r = sconn_flush(c);
				if (r < 0) sconn_close(c);
				else if (r > 0) epoll_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
				continue;
			}
			/* One read per readiness: level-triggered epoll reports the rest on the next wait, and
			 * a ping-pong costs no extra read that would only say EAGAIN. */
			ssize_t r = recv(c->fd, c->buf, sizeof c->buf, 0);
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				sconn_close(c);
				continue;
			}
			if (r < 0) continue;
			c->len = r;
			int f = sconn_flush(c);
			if (f < 0) sconn_close(c);
			else if (f == 0) epoll_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
		}
	}
}

/* ---- the client ---- */

static uint64_t splitmix64(uint64_t *s) {
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum { CONNECTING, RUNNING, PARKED };

struct cconn {
	int fd;
	int index;
	int state;
	int want_out;
	uint64_t rng;
	uint64_t message;
	/* The message in flight: `size` bytes from pattern + base; sent and received so far. */
	size_t size, base, sent, got;
	double started_ms;
};

static struct {
	uint8_t *pattern;
	uint8_t *rbuf;
	size_t min_bytes, max_bytes;
	int ep;
	/* Measurement window [t0, t1): messages and bytes counted, round trips sampled. */
	double t0, t1;
	int counting, stopping;
	uint64_t messages, bytes, verified;
	float *samples;
	size_t nsamples;
	int inflight;
	double progress_ms;
} C;

static void start_message(struct cconn *c);

static void send_some(struct cconn *c) {
	while (c->sent < c->size) {
		ssize_t w = send(c->fd, C.pattern + c->base + c->sent, c->size - c->sent, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno != EAGAIN) fail("send on connection %d: %s", c->index, strerror(errno));
			if (!c->want_out) epoll_set(C.ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, c);
			c->want_out = 1;
			return;
		}
		c->sent += w;
	}
	if (c->want_out) epoll_set(C.ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
	c->want_out = 0;
}

static void start_message(struct cconn *c) {
	c->size = C.min_bytes + splitmix64(&c->rng) % (C.max_bytes - C.min_bytes + 1);
	c->base = splitmix64(&c->rng) % PATTERN_SPAN;
	c->sent = c->got = 0;
	c->started_ms = now_ms();
	c->state = RUNNING;
	C.inflight++;
	send_some(c);
}

static void receive(struct cconn *c) {
	size_t room = c->size - c->got;
	ssize_t r = recv(c->fd, C.rbuf, MAX_MESSAGE, 0);
	if (r < 0) {
		if (errno == EAGAIN) return;
		fail("recv on connection %d: %s (message %llu, %zu of %zu bytes back)", c->index, strerror(errno), (unsigned long long)c->message, c->got, c->size);
	}
	if (r == 0) fail("the server closed connection %d (message %llu, %zu of %zu bytes back)", c->index, (unsigned long long)c->message, c->got, c->size);
	if ((size_t)r > room || c->state != RUNNING) fail("connection %d: the server sent %zd bytes more than it was sent (message %llu)", c->index, (ssize_t)r - (ssize_t)room, (unsigned long long)c->message);
	const uint8_t *want = C.pattern + c->base + c->got;
	if (memcmp(C.rbuf, want, r) != 0) {
		size_t k = 0;
		while (C.rbuf[k] == want[k]) k++;
		fail("echo differs on connection %d, message %llu (%zu bytes), at byte %zu of it: got 0x%02x, sent 0x%02x", c->index, (unsigned long long)c->message, c->size, c->got + k, C.rbuf[k], want[k]);
	}
	c->got += r;
	C.verified += r;
	double t = now_ms();
	C.progress_ms = t;
	if (C.counting && t < C.t1) C.bytes += r;
	if (c->got < c->size) return;
	C.inflight--;
	c->message++;
	if (C.counting && t < C.t1) {
		C.messages++;
		if (C.nsamples < MAX_SAMPLES) C.samples[C.nsamples++] = (float)((t - c->started_ms) * 1e3);
	}
	c->state = PARKED;
	if (!C.stopping && C.t0 > 0) start_message(c);
}

static void connected(struct cconn *c) {
	int err = 0;
	socklen_t len = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err != 0) fail("connect (connection %d): %s", c->index, strerror(err));
	epoll_set(C.ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
	start_message(c);
}

static void poll_once(int timeout_ms) {
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(C.ep, evs, MAX_EVENTS, timeout_ms);
	if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct cconn *c = evs[i].data.ptr;
		if (c->state == CONNECTING) {
			connected(c);
			continue;
		}
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
		if ((evs[i].events & EPOLLOUT) && c->state == RUNNING) send_some(c);
	}
	if (now_ms() - C.progress_ms > STALL_MS) fail("no progress for %d s with %d messages in flight", STALL_MS / 1000, C.inflight);
}

static int cmp_float(const void *a, const void *b) {
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static double nearest_rank(const float *sorted, size_t n, double p) {
	if (n == 0) return -1;
	size_t rank = (size_t)(p / 100 * n + 0.999999);
	if (rank < 1) rank = 1;
	return sorted[(rank > n ? n : rank) - 1];
}

static int client(const char *host, int port, int conns, size_t min_bytes, size_t max_bytes, int warmup_ms, int measure_ms, uint64_t seed, int server_pid) {
	client_mode = 1;
	if (conns < 1 || min_bytes < 1 || max_bytes < min_bytes || max_bytes > MAX_MESSAGE) fail("bad client arguments");
	raise_fd_limit();
	C.min_bytes = min_bytes;
	C.max_bytes = max_bytes;
	C.pattern = malloc(PATTERN_SPAN + MAX_MESSAGE);
	C.rbuf = malloc(MAX_MESSAGE);
	C.samples = malloc(MAX_SAMPLES * sizeof(float));
	struct cconn *cs = calloc(conns, sizeof *cs);
	if (!C.pattern || !C.rbuf || !C.samples || !cs) fail("out of memory");
	uint64_t s = seed;
	for (size_t i = 0; i < PATTERN_SPAN + MAX_MESSAGE; i += 8) {
		uint64_t v = splitmix64(&s);
		memcpy(C.pattern + i, &v, 8);
	}
	C.ep = epoll_create1(EPOLL_CLOEXEC);
	if (C.ep < 0) fail("epoll_create1: %s", strerror(errno));
	struct sockaddr_in a = address(host, port);
	C.progress_ms = now_ms();
	for (int b = 0; b < conns; b += CONNECT_BATCH) {
		int end = b + CONNECT_BATCH < conns ? b + CONNECT_BATCH : conns;
		for (int i = b; i < end; i++) {
			struct cconn *c = &cs[i];
			c->index = i;
			c->rng = seed ^ (0x5851f42d4c957f2dull * (uint64_t)(i + 1));
			c->state = CONNECTING;
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (c->fd < 0) fail("socket (connection %d): %s", i, strerror(errno));
			set_int(c->fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
			if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) fail("connect (connection %d): %s", i, strerror(errno));
			epoll_set(C.ep, EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
		}
		/* The batch's first messages: each connection is accepted and echoing before the next
		 * batch connects. */
		for (int i = b; i < end; i++)
			while (cs[i].state != PARKED) poll_once(100);
	}
	C.t0 = now_ms();
	for (int i = 0; i < conns; i++) start_message(&cs[i]);
	double warm_end = C.t0 + warmup_ms;
	while (now_ms() < warm_end) poll_once(1);
	double cpu0 = cpu_s(), su0, ss0, su1, ss1;
	proc_cpu(server_pid, &su0, &ss0);
	C.t0 = now_ms();
	C.t1 = C.t0 + measure_ms;
	C.counting = 1;
	while (now_ms() < C.t1) poll_once(1);
	double cpu1 = cpu_s();
	proc_cpu(server_pid, &su1, &ss1);
	int have_server = su0 >= 0 && su1 >= 0;
	C.stopping = 1;
	while (C.inflight > 0) poll_once(100);
	for (int i = 0; i < conns; i++) close(cs[i].fd);
	qsort(C.samples, C.nsamples, sizeof(float), cmp_float);
	printf("{\"ok\":true,\"messages\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%zu,\"verified_bytes\":%llu,\"client_cpu_s\":%.4f,\"server_user_s\":%.2f,\"server_sys_s\":%.2f}\n",
	       (unsigned long long)C.messages, (unsigned long long)C.bytes, measure_ms / 1e3, nearest_rank(C.samples, C.nsamples, 50), nearest_rank(C.samples, C.nsamples, 99), C.nsamples,
	       (unsigned long long)C.verified, cpu1 - cpu0, have_server ? su1 - su0 : -1, have_server ? ss1 - ss0 : -1);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "serve") == 0) serve(argv[2], atoi(argv[3]));
	if ((argc == 10 || argc == 11) && strcmp(argv[1], "client") == 0)
		return client(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10), atoi(argv[7]), atoi(argv[8]), strtoull(argv[9], NULL, 10),
		              argc == 11 ? atoi(argv[10]) : 0);
	fprintf(stderr, "usage: echo_epoll serve HOST PORT | echo_epoll client HOST PORT CONNS MIN_BYTES MAX_BYTES WARMUP_MS MEASURE_MS SEED [SERVER_PID]\n");
	return 2;
}
