// io_uring_setup(2): struct io_uring_params, the ring offsets it returns, setup flags, features,
// ring flag words and mmap offsets. Names are the kernel's (include/uapi/linux/io_uring.h).
// Offsets of fields inside the ring mapping are NOT here: the kernel reports them in sq_off /
// cq_off and the ring uses those values.

/** struct io_uring_params (120 bytes). */
export const PARAMS = {
  size: 120,
  sq_entries: 0,
  cq_entries: 4,
  flags: 8,
  sq_thread_cpu: 12,
  sq_thread_idle: 16,
  features: 20,
  wq_fd: 24,
  resv: 28, // u32[3], must be 0
  sq_off: 40,
  cq_off: 80,
} as const;

/** struct io_sqring_offsets (40 bytes), at PARAMS.sq_off. */
export const SQRING_OFFSETS = {
  size: 40,
  head: 0,
  tail: 4,
  ring_mask: 8,
  ring_entries: 12,
  flags: 16,
  dropped: 20,
  array: 24,
  resv1: 28,
  user_addr: 32, // u64; input with IORING_SETUP_NO_MMAP: address of the SQE array (since 6.5)
} as const;

/** struct io_cqring_offsets (40 bytes), at PARAMS.cq_off. */
export const CQRING_OFFSETS = {
  size: 40,
  head: 0,
  tail: 4,
  ring_mask: 8,
  ring_entries: 12,
  overflow: 16,
  cqes: 20,
  flags: 24,
  resv1: 28,
  user_addr: 32, // u64; input with IORING_SETUP_NO_MMAP: address of the SQ+CQ rings (since 6.5)
} as const;

/** IORING_SETUP_* (io_uring_params.flags), with the kernel version that added each. */
export const IORING_SETUP_IOPOLL = 1 << 0; // 5.1
export const IORING_SETUP_SQPOLL = 1 << 1; // 5.1
export const IORING_SETUP_SQ_AFF = 1 << 2; // 5.1
export const IORING_SETUP_CQSIZE = 1 << 3; // 5.5
export const IORING_SETUP_CLAMP = 1 << 4; // 5.6
export const IORING_SETUP_ATTACH_WQ = 1 << 5; // 5.6
export const IORING_SETUP_R_DISABLED = 1 << 6; // 5.10
export const IORING_SETUP_SUBMIT_ALL = 1 << 7; // 5.18
export const IORING_SETUP_COOP_TASKRUN = 1 << 8; // 5.19
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9; // 5.19
export const IORING_SETUP_SQE128 = 1 << 10; // 5.19
export const IORING_SETUP_CQE32 = 1 << 11; // 5.19
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12; // 6.0
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13; // 6.1
export const IORING_SETUP_NO_MMAP = 1 << 14; // 6.5
export const IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15; // 6.5
export const IORING_SETUP_NO_SQARRAY = 1 << 16; // 6.6
export const IORING_SETUP_HYBRID_IOPOLL = 1 << 17; // 6.13
export const IORING_SETUP_CQE_MIXED = 1 << 18; // 6.18
export const IORING_SETUP_SQE_MIXED = 1 << 19; // 6.19
export const IORING_SETUP_SQ_REWIND = 1 << 20; // 7.0

/** Setup flags by name, with the first kernel that accepts each; used for error messages and
 * for the capability report. */
export const SETUP_FLAGS: ReadonlyArray<{ name: string; value: number; since: string }> = [
  { name: "IOPOLL", value: IORING_SETUP_IOPOLL, since: "5.1" },
  { name: "SQPOLL", value: IORING_SETUP_SQPOLL, since: "5.1" },
  { name: "SQ_AFF", value: IORING_SETUP_SQ_AFF, since: "5.1" },
  { name: "CQSIZE", value: IORING_SETUP_CQSIZE, since: "5.5" },
  { name: "CLAMP", value: IORING_SETUP_CLAMP, since: "5.6" },
  { name: "ATTACH_WQ", value: IORING_SETUP_ATTACH_WQ, since: "5.6" },
  { name: "R_DISABLED", value: IORING_SETUP_R_DISABLED, since: "5.10" },
  { name: "SUBMIT_ALL", value: IORING_SETUP_SUBMIT_ALL, since: "5.18" },
  { name: "COOP_TASKRUN", value: IORING_SETUP_COOP_TASKRUN, since: "5.19" },
  { name: "TASKRUN_FLAG", value: IORING_SETUP_TASKRUN_FLAG, since: "5.19" },
  { name: "SQE128", value: IORING_SETUP_SQE128, since: "5.19" },
  { name: "CQE32", value: IORING_SETUP_CQE32, since: "5.19" },
  { name: "SINGLE_ISSUER", value: IORING_SETUP_SINGLE_ISSUER, since: "6.0" },
  { name: "DEFER_TASKRUN", value: IORING_SETUP_DEFER_TASKRUN, since: "6.1" },
  { name: "NO_MMAP", value: IORING_SETUP_NO_MMAP, since: "6.5" },
  { name: "REGISTERED_FD_ONLY", value: IORING_SETUP_REGISTERED_FD_ONLY, since: "6.5" },
  { name: "NO_SQARRAY", value: IORING_SETUP_NO_SQARRAY, since: "6.6" },
  { name: "HYBRID_IOPOLL", value: IORING_SETUP_HYBRID_IOPOLL, since: "6.13" },
  { name: "CQE_MIXED", value: IORING_SETUP_CQE_MIXED, since: "6.18" },
  { name: "SQE_MIXED", value: IORING_SETUP_SQE_MIXED, since: "6.19" },
  { name: "SQ_REWIND", value: IORING_SETUP_SQ_REWIND, since: "7.0" },
];

/** IORING_FEAT_* (io_uring_params.features, written by the kernel). */
export const IORING_FEAT_SINGLE_MMAP = 1 << 0; // 5.4
export const IORING_FEAT_NODROP = 1 << 1; // 5.5
export const IORING_FEAT_SUBMIT_STABLE = 1 << 2; // 5.5
export const IORING_FEAT_RW_CUR_POS = 1 << 3; // 5.6
export const IORING_FEAT_CUR_PERSONALITY = 1 << 4; // 5.6
export const IORING_FEAT_FAST_POLL = 1 << 5; // 5.7
export const IORING_FEAT_POLL_32BITS = 1 << 6; // 5.9
export const IORING_FEAT_SQPOLL_NONFIXED = 1 << 7; // 5.11
export const IORING_FEAT_EXT_ARG = 1 << 8; // 5.11
export const IORING_FEAT_NATIVE_WORKERS = 1 << 9; // 5.12
export const IORING_FEAT_RSRC_TAGS = 1 << 10; // 5.13
export const IORING_FEAT_CQE_SKIP = 1 << 11; // 5.17
export const IORING_FEAT_LINKED_FILE = 1 << 12; // 5.17
export const IORING_FEAT_REG_REG_RING = 1 << 13; // 6.3
export const IORING_FEAT_RECVSEND_BUNDLE = 1 << 14; // 6.10
export const IORING_FEAT_MIN_TIMEOUT = 1 << 15; // 6.12
export const IORING_FEAT_RW_ATTR = 1 << 16; // 6.14
export const IORING_FEAT_NO_IOWAIT = 1 << 17; // 6.15

export const FEATURES: ReadonlyArray<{ name: string; value: number; since: string }> = [
  { name: "SINGLE_MMAP", value: IORING_FEAT_SINGLE_MMAP, since: "5.4" },
  { name: "NODROP", value: IORING_FEAT_NODROP, since: "5.5" },
  { name: "SUBMIT_STABLE", value: IORING_FEAT_SUBMIT_STABLE, since: "5.5" },
  { name: "RW_CUR_POS", value: IORING_FEAT_RW_CUR_POS, since: "5.6" },
  { name: "CUR_PERSONALITY", value: IORING_FEAT_CUR_PERSONALITY, since: "5.6" },
  { name: "FAST_POLL", value: IORING_FEAT_FAST_POLL, since: "5.7" },
  { name: "POLL_32BITS", value: IORING_FEAT_POLL_32BITS, since: "5.9" },
  { name: "SQPOLL_NONFIXED", value: IORING_FEAT_SQPOLL_NONFIXED, since: "5.11" },
  { name: "EXT_ARG", value: IORING_FEAT_EXT_ARG, since: "5.11" },
  { name: "NATIVE_WORKERS", value: IORING_FEAT_NATIVE_WORKERS, since: "5.12" },
  { name: "RSRC_TAGS", value: IORING_FEAT_RSRC_TAGS, since: "5.13" },
  { name: "CQE_SKIP", value: IORING_FEAT_CQE_SKIP, since: "5.17" },
  { name: "LINKED_FILE", value: IORING_FEAT_LINKED_FILE, since: "5.17" },
  { name: "REG_REG_RING", value: IORING_FEAT_REG_REG_RING, since: "6.3" },
  { name: "RECVSEND_BUNDLE", value: IORING_FEAT_RECVSEND_BUNDLE, since: "6.10" },
  { name: "MIN_TIMEOUT", value: IORING_FEAT_MIN_TIMEOUT, since: "6.12" },
  { name: "RW_ATTR", value: IORING_FEAT_RW_ATTR, since: "6.14" },
  { name: "NO_IOWAIT", value: IORING_FEAT_NO_IOWAIT, since: "6.15" },
];

/** SQ ring flags word (at sq_off.flags). */
export const IORING_SQ_NEED_WAKEUP = 1 << 0;
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;
export const IORING_SQ_TASKRUN = 1 << 2;
/** CQ ring flags word (at cq_off.flags). */
export const IORING_CQ_EVENTFD_DISABLED = 1 << 0;

/** mmap(2) offsets on the ring fd. */
export const IORING_OFF_SQ_RING = 0;
export const IORING_OFF_CQ_RING = 0x8000000;
export const IORING_OFF_SQES = 0x10000000;
export const IORING_OFF_PBUF_RING = 0x80000000;
export const IORING_OFF_PBUF_SHIFT = 16;
export const IORING_OFF_MMAP_MASK = 0xf8000000;

/** io_uring_enter(2) flags. */
export const IORING_ENTER_GETEVENTS = 1 << 0; // 5.1
export const IORING_ENTER_SQ_WAKEUP = 1 << 1; // 5.1
export const IORING_ENTER_SQ_WAIT = 1 << 2; // 5.10
export const IORING_ENTER_EXT_ARG = 1 << 3; // 5.11
export const IORING_ENTER_REGISTERED_RING = 1 << 4; // 5.18
export const IORING_ENTER_ABS_TIMER = 1 << 5; // 6.12
export const IORING_ENTER_EXT_ARG_REG = 1 << 6; // 6.13
export const IORING_ENTER_NO_IOWAIT = 1 << 7; // 6.15

/** struct io_uring_getevents_arg (24 bytes): the IORING_ENTER_EXT_ARG argument. */
export const GETEVENTS_ARG = {
  size: 24,
  sigmask: 0,
  sigmask_sz: 8,
  min_wait_usec: 12,
  ts: 16,
} as const;

/** struct __kernel_timespec (16 bytes). */
export const KERNEL_TIMESPEC = { size: 16, tv_sec: 0, tv_nsec: 8 } as const;

/** _NSIG / 8 on x86_64: the sigset size the kernel expects. */
export const KERNEL_SIGSET_BYTES = 8;
