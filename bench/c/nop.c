// NOP round trips through liburing: the C baseline of bench/nop.ts. Same ring as the TypeScript
// side (128 entries, SINGLE_ISSUER | COOP_TASKRUN | SUBMIT_ALL, registered ring fd), same loop:
// queue `batch` NOPs, io_uring_submit_and_wait(batch), then reap every CQE and add up its res and
// user_data so the completion work is not optimised away.
// Usage: nop <batch> <ops>. Prints one JSON line: {"batch", "ops", "ns", "check"}.
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s <batch> <ops>\n", argv[0]);
		return 2;
	}
	unsigned batch = (unsigned)atoi(argv[1]);
	long long ops = atoll(argv[2]);
	if (batch < 1 || batch > 128 || ops < batch) {
		fprintf(stderr, "batch must be 1..128 and ops >= batch\n");
		return 2;
	}
	struct io_uring ring;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	int ret = io_uring_queue_init_params(128, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-ret));
		return 1;
	}
	ret = io_uring_register_ring_fd(&ring);
	if (ret != 1) {
		fprintf(stderr, "io_uring_register_ring_fd: %s\n", strerror(ret < 0 ? -ret : 0));
		return 1;
	}
	long long rounds = ops / batch, done = 0;
	unsigned long long check = 0;
	long long t0 = now_ns();
	for (long long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < batch; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, i + 1);
		}
		ret = io_uring_submit_and_wait(&ring, batch);
		if (ret < 0) {
			fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
			return 1;
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			check += cqe->user_data + (unsigned)cqe->res;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		done += seen;
	}
	long long ns = now_ns() - t0;
	printf("{\"batch\":%u,\"ops\":%lld,\"ns\":%lld,\"check\":%llu}\n", batch, done, ns, check);
	io_uring_queue_exit(&ring);
	return 0;
}
