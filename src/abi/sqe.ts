// Submission and completion entries: struct io_uring_sqe, struct io_uring_cqe, opcodes and the
// per-opcode flag words. Names are the kernel's; "since" is the first kernel with the item.

/** struct io_uring_sqe (64 bytes). Union members share an offset; each has its own name so a
 * prep function reads like the liburing helper it mirrors. */
export const SQE = {
  size: 64,
  opcode: 0, // u8
  flags: 1, // u8, IOSQE_*
  ioprio: 2, // u16; send/recv: IORING_RECVSEND_*; accept: IORING_ACCEPT_*
  fd: 4, // s32
  off: 8, // u64
  addr2: 8, // u64
  cmd_op: 8, // u32 (URING_CMD)
  addr: 16, // u64
  level: 16, // u32 (URING_CMD socket options)
  optname: 20, // u32
  len: 24, // u32
  op_flags: 28, // u32: rw_flags / msg_flags / timeout_flags / accept_flags / cancel_flags / nop_flags ...
  user_data: 32, // u64
  buf_index: 40, // u16 (packed union with buf_group)
  buf_group: 40, // u16
  personality: 42, // u16
  splice_fd_in: 44, // s32
  file_index: 44, // u32
  zcrx_ifq_idx: 44, // u32 (RECV_ZC, since 6.15)
  optlen: 44, // u32
  addr_len: 44, // u16 (SEND/SEND_ZC destination length, since 6.0)
  pad3: 46, // u16, must be 0
  addr3: 48, // u64
  optval: 48, // u64
  pad2: 56, // u64, must be 0 for SEND_ZC
} as const;

/** SQE sizes in bytes: normal and with IORING_SETUP_SQE128. */
export const SQE_SIZE = 64;
export const SQE128_SIZE = 128;

/** IOSQE_* (sqe.flags). */
export const IOSQE_FIXED_FILE = 1 << 0; // 5.1
export const IOSQE_IO_DRAIN = 1 << 1; // 5.2
export const IOSQE_IO_LINK = 1 << 2; // 5.3
export const IOSQE_IO_HARDLINK = 1 << 3; // 5.5
export const IOSQE_ASYNC = 1 << 4; // 5.6
export const IOSQE_BUFFER_SELECT = 1 << 5; // 5.7
export const IOSQE_CQE_SKIP_SUCCESS = 1 << 6; // 5.17

/** IORING_OP_* with the kernel version that added each. */
export const IORING_OP_NOP = 0; // 5.1
export const IORING_OP_READV = 1; // 5.1
export const IORING_OP_WRITEV = 2; // 5.1
export const IORING_OP_FSYNC = 3; // 5.1
export const IORING_OP_READ_FIXED = 4; // 5.1
export const IORING_OP_WRITE_FIXED = 5; // 5.1
export const IORING_OP_POLL_ADD = 6; // 5.1
export const IORING_OP_POLL_REMOVE = 7; // 5.1
export const IORING_OP_SYNC_FILE_RANGE = 8; // 5.2
export const IORING_OP_SENDMSG = 9; // 5.3
export const IORING_OP_RECVMSG = 10; // 5.3
export const IORING_OP_TIMEOUT = 11; // 5.4
export const IORING_OP_TIMEOUT_REMOVE = 12; // 5.5
export const IORING_OP_ACCEPT = 13; // 5.5
export const IORING_OP_ASYNC_CANCEL = 14; // 5.5
export const IORING_OP_LINK_TIMEOUT = 15; // 5.5
export const IORING_OP_CONNECT = 16; // 5.5
export const IORING_OP_FALLOCATE = 17; // 5.6
export const IORING_OP_OPENAT = 18; // 5.6
export const IORING_OP_CLOSE = 19; // 5.6
export const IORING_OP_FILES_UPDATE = 20; // 5.6
export const IORING_OP_STATX = 21; // 5.6
export const IORING_OP_READ = 22; // 5.6
export const IORING_OP_WRITE = 23; // 5.6
export const IORING_OP_FADVISE = 24; // 5.6
export const IORING_OP_MADVISE = 25; // 5.6
export const IORING_OP_SEND = 26; // 5.6
export const IORING_OP_RECV = 27; // 5.6
export const IORING_OP_OPENAT2 = 28; // 5.6
export const IORING_OP_EPOLL_CTL = 29; // 5.6
export const IORING_OP_SPLICE = 30; // 5.7
export const IORING_OP_PROVIDE_BUFFERS = 31; // 5.7
export const IORING_OP_REMOVE_BUFFERS = 32; // 5.7
export const IORING_OP_TEE = 33; // 5.8
export const IORING_OP_SHUTDOWN = 34; // 5.11
export const IORING_OP_RENAMEAT = 35; // 5.11
export const IORING_OP_UNLINKAT = 36; // 5.11
export const IORING_OP_MKDIRAT = 37; // 5.15
export const IORING_OP_SYMLINKAT = 38; // 5.15
export const IORING_OP_LINKAT = 39; // 5.15
export const IORING_OP_MSG_RING = 40; // 5.18
export const IORING_OP_FSETXATTR = 41; // 5.19
export const IORING_OP_SETXATTR = 42; // 5.19
export const IORING_OP_FGETXATTR = 43; // 5.19
export const IORING_OP_GETXATTR = 44; // 5.19
export const IORING_OP_SOCKET = 45; // 5.19
export const IORING_OP_URING_CMD = 46; // 5.19
export const IORING_OP_SEND_ZC = 47; // 6.0
export const IORING_OP_SENDMSG_ZC = 48; // 6.1
export const IORING_OP_READ_MULTISHOT = 49; // 6.7
export const IORING_OP_WAITID = 50; // 6.7
export const IORING_OP_FUTEX_WAIT = 51; // 6.7
export const IORING_OP_FUTEX_WAKE = 52; // 6.7
export const IORING_OP_FUTEX_WAITV = 53; // 6.7
export const IORING_OP_FIXED_FD_INSTALL = 54; // 6.8
export const IORING_OP_FTRUNCATE = 55; // 6.9
export const IORING_OP_BIND = 56; // 6.11
export const IORING_OP_LISTEN = 57; // 6.11
export const IORING_OP_RECV_ZC = 58; // 6.15
export const IORING_OP_EPOLL_WAIT = 59; // 6.15
export const IORING_OP_READV_FIXED = 60; // 6.15
export const IORING_OP_WRITEV_FIXED = 61; // 6.15
export const IORING_OP_PIPE = 62; // 6.16
export const IORING_OP_NOP128 = 63; // 6.19
export const IORING_OP_URING_CMD128 = 64; // 6.19

/** The opcodes bun-uring prepares, by name, with the first kernel that has each. Errors and the
 * capability report use it to say which kernel an unsupported opcode needs. */
export const OPCODES: ReadonlyArray<{ name: string; op: number; since: string }> = [
  { name: "NOP", op: IORING_OP_NOP, since: "5.1" },
  { name: "READV", op: IORING_OP_READV, since: "5.1" },
  { name: "WRITEV", op: IORING_OP_WRITEV, since: "5.1" },
  { name: "READ_FIXED", op: IORING_OP_READ_FIXED, since: "5.1" },
  { name: "WRITE_FIXED", op: IORING_OP_WRITE_FIXED, since: "5.1" },
  { name: "POLL_ADD", op: IORING_OP_POLL_ADD, since: "5.1" },
  { name: "SENDMSG", op: IORING_OP_SENDMSG, since: "5.3" },
  { name: "RECVMSG", op: IORING_OP_RECVMSG, since: "5.3" },
  { name: "TIMEOUT", op: IORING_OP_TIMEOUT, since: "5.4" },
  { name: "TIMEOUT_REMOVE", op: IORING_OP_TIMEOUT_REMOVE, since: "5.5" },
  { name: "ACCEPT", op: IORING_OP_ACCEPT, since: "5.5" },
  { name: "ASYNC_CANCEL", op: IORING_OP_ASYNC_CANCEL, since: "5.5" },
  { name: "LINK_TIMEOUT", op: IORING_OP_LINK_TIMEOUT, since: "5.5" },
  { name: "CONNECT", op: IORING_OP_CONNECT, since: "5.5" },
  { name: "CLOSE", op: IORING_OP_CLOSE, since: "5.6" },
  { name: "READ", op: IORING_OP_READ, since: "5.6" },
  { name: "WRITE", op: IORING_OP_WRITE, since: "5.6" },
  { name: "SEND", op: IORING_OP_SEND, since: "5.6" },
  { name: "RECV", op: IORING_OP_RECV, since: "5.6" },
  { name: "SHUTDOWN", op: IORING_OP_SHUTDOWN, since: "5.11" },
  { name: "SOCKET", op: IORING_OP_SOCKET, since: "5.19" },
  { name: "URING_CMD", op: IORING_OP_URING_CMD, since: "5.19" },
  { name: "SEND_ZC", op: IORING_OP_SEND_ZC, since: "6.0" },
  { name: "SENDMSG_ZC", op: IORING_OP_SENDMSG_ZC, since: "6.1" },
  { name: "BIND", op: IORING_OP_BIND, since: "6.11" },
  { name: "LISTEN", op: IORING_OP_LISTEN, since: "6.11" },
  { name: "RECV_ZC", op: IORING_OP_RECV_ZC, since: "6.15" },
];

/** Name of an opcode (for errors), or `OP_<n>`. */
export function opcodeName(op: number): string {
  for (const o of OPCODES) if (o.op === op) return o.name;
  return `OP_${op}`;
}

/** First kernel with an opcode, or "?" when bun-uring does not track it. */
export function opcodeSince(op: number): string {
  for (const o of OPCODES) if (o.op === op) return o.since;
  return "?";
}

/** IORING_RECVSEND_* and SEND_ZC flags, written to sqe.ioprio for send/recv opcodes. */
export const IORING_RECVSEND_POLL_FIRST = 1 << 0; // 5.19
export const IORING_RECV_MULTISHOT = 1 << 1; // 6.0
export const IORING_RECVSEND_FIXED_BUF = 1 << 2; // 6.0
export const IORING_SEND_ZC_REPORT_USAGE = 1 << 3; // 6.2
export const IORING_RECVSEND_BUNDLE = 1 << 4; // 6.10
export const IORING_SEND_VECTORIZED = 1 << 5; // 6.17

/** IORING_ACCEPT_* (sqe.ioprio for ACCEPT). */
export const IORING_ACCEPT_MULTISHOT = 1 << 0; // 5.19
export const IORING_ACCEPT_DONTWAIT = 1 << 1; // 6.10
export const IORING_ACCEPT_POLL_FIRST = 1 << 2; // 6.10

/** IORING_TIMEOUT_* (sqe.timeout_flags). */
export const IORING_TIMEOUT_ABS = 1 << 0;
export const IORING_TIMEOUT_UPDATE = 1 << 1;
export const IORING_TIMEOUT_BOOTTIME = 1 << 2;
export const IORING_TIMEOUT_REALTIME = 1 << 3;
export const IORING_LINK_TIMEOUT_UPDATE = 1 << 4;
export const IORING_TIMEOUT_ETIME_SUCCESS = 1 << 5;
export const IORING_TIMEOUT_MULTISHOT = 1 << 6;

/** IORING_ASYNC_CANCEL_* (sqe.cancel_flags). */
export const IORING_ASYNC_CANCEL_ALL = 1 << 0; // 5.19
export const IORING_ASYNC_CANCEL_FD = 1 << 1; // 5.19
export const IORING_ASYNC_CANCEL_ANY = 1 << 2; // 5.19
export const IORING_ASYNC_CANCEL_FD_FIXED = 1 << 3; // 6.0
export const IORING_ASYNC_CANCEL_USERDATA = 1 << 4; // 6.6
export const IORING_ASYNC_CANCEL_OP = 1 << 5; // 6.6

/** IORING_NOP_* (sqe.nop_flags). */
export const IORING_NOP_INJECT_RESULT = 1 << 0; // 6.12
export const IORING_NOP_CQE32 = 1 << 5; // 6.18

/** Socket URING_CMD operations (sqe.cmd_op), since 6.7. */
export const SOCKET_URING_OP_SIOCINQ = 0;
export const SOCKET_URING_OP_SIOCOUTQ = 1;
export const SOCKET_URING_OP_GETSOCKOPT = 2;
export const SOCKET_URING_OP_SETSOCKOPT = 3;

/** IORING_FILE_INDEX_ALLOC: "kernel picks a fixed-file slot". */
export const IORING_FILE_INDEX_ALLOC = 0xffffffff;

/** struct io_uring_cqe: 16 bytes, 32 with CQE32 (or an F_32 entry on a CQE_MIXED ring). */
export const CQE = {
  size: 16,
  size32: 32,
  user_data: 0, // u64
  res: 8, // s32
  flags: 12, // u32
  big_cqe: 16, // u64[2], only in 32-byte CQEs
} as const;

/** IORING_CQE_F_* (cqe.flags). */
export const IORING_CQE_F_BUFFER = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_F_SOCK_NONEMPTY = 1 << 2;
export const IORING_CQE_F_NOTIF = 1 << 3;
export const IORING_CQE_F_BUF_MORE = 1 << 4;
export const IORING_CQE_F_SKIP = 1 << 5; // 6.18, CQE_MIXED filler
export const IORING_CQE_F_32 = 1 << 15; // 6.18, 32-byte entry on a CQE_MIXED ring
export const IORING_CQE_BUFFER_SHIFT = 16;

/** Set in the res of a SEND_ZC notification (REPORT_USAGE) when the kernel copied the data. */
export const IORING_NOTIF_USAGE_ZC_COPIED = 0x80000000;

/** Small named checks on CQE flags (tokio-rs/io-uring style). */
export const cqeMore = (flags: number): boolean => (flags & IORING_CQE_F_MORE) !== 0;
export const cqeNotif = (flags: number): boolean => (flags & IORING_CQE_F_NOTIF) !== 0;
export const cqeBufferId = (flags: number): number => flags >>> IORING_CQE_BUFFER_SHIFT;
export const cqeHasBuffer = (flags: number): boolean => (flags & IORING_CQE_F_BUFFER) !== 0;
