// Tier 1 (no kernel): every struct size and field offset in src/abi, and the constants' values.
// The expected numbers below are typed from the kernel's include/uapi/linux/io_uring.h (and
// io_uring/zcrx.h, query.h), not computed from src/abi, so a wrong edit there fails here. The last block has the C compiler check the same layouts and every constant
// against the UAPI header installed on this machine.
import { describe, expect, test } from "bun:test";
import * as A from "../src/abi/index.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { describeIf } from "./helpers.ts";

type Layout = Readonly<Record<string, number>>;

/** [name, the layout object in src/abi, size, [field, offset] pairs from the reference]. */
const STRUCTS: ReadonlyArray<[string, Layout, number, ReadonlyArray<[string, number]>]> = [
  [
    "io_uring_params",
    A.PARAMS,
    120,
    [
      ["sq_entries", 0],
      ["cq_entries", 4],
      ["flags", 8],
      ["sq_thread_cpu", 12],
      ["sq_thread_idle", 16],
      ["features", 20],
      ["wq_fd", 24],
      ["resv", 28],
      ["sq_off", 40],
      ["cq_off", 80],
    ],
  ],
  [
    "io_sqring_offsets",
    A.SQRING_OFFSETS,
    40,
    [
      ["head", 0],
      ["tail", 4],
      ["ring_mask", 8],
      ["ring_entries", 12],
      ["flags", 16],
      ["dropped", 20],
      ["array", 24],
      ["resv1", 28],
      ["user_addr", 32],
    ],
  ],
  [
    "io_cqring_offsets",
    A.CQRING_OFFSETS,
    40,
    [
      ["head", 0],
      ["tail", 4],
      ["ring_mask", 8],
      ["ring_entries", 12],
      ["overflow", 16],
      ["cqes", 20],
      ["flags", 24],
      ["resv1", 28],
      ["user_addr", 32],
    ],
  ],
  [
    "io_uring_sqe",
    A.SQE,
    64,
    [
      ["opcode", 0],
      ["flags", 1],
      ["ioprio", 2],
      ["fd", 4],
      ["off", 8],
      ["addr2", 8],
      ["cmd_op", 8],
      ["addr", 16],
      ["level", 16],
      ["optname", 20],
      ["len", 24],
      ["op_flags", 28],
      ["user_data", 32],
      ["buf_index", 40],
      ["buf_group", 40],
      ["personality", 42],
      ["splice_fd_in", 44],
      ["file_index", 44],
      ["zcrx_ifq_idx", 44],
      ["optlen", 44],
      ["addr_len", 44],
      ["pad3", 46],
      ["addr3", 48],
      ["optval", 48],
      ["pad2", 56],
    ],
  ],
  [
    "io_uring_cqe",
    A.CQE,
    16,
    [
      ["user_data", 0],
      ["res", 8],
      ["flags", 12],
      ["big_cqe", 16],
      ["size32", 32],
    ],
  ],
  [
    "io_uring_getevents_arg",
    A.GETEVENTS_ARG,
    24,
    [
      ["sigmask", 0],
      ["sigmask_sz", 8],
      ["min_wait_usec", 12],
      ["ts", 16],
    ],
  ],
  [
    "__kernel_timespec",
    A.KERNEL_TIMESPEC,
    16,
    [
      ["tv_sec", 0],
      ["tv_nsec", 8],
    ],
  ],
  [
    "io_uring_probe",
    A.PROBE,
    16,
    [
      ["last_op", 0],
      ["ops_len", 1],
      ["resv", 2],
      ["resv2", 4],
      ["ops", 16],
    ],
  ],
  [
    "io_uring_probe_op",
    A.PROBE_OP,
    8,
    [
      ["op", 0],
      ["resv", 1],
      ["flags", 2],
      ["resv2", 4],
    ],
  ],
  [
    "io_uring_rsrc_register",
    A.RSRC_REGISTER,
    32,
    [
      ["nr", 0],
      ["flags", 4],
      ["resv2", 8],
      ["data", 16],
      ["tags", 24],
    ],
  ],
  [
    "io_uring_rsrc_update",
    A.RSRC_UPDATE,
    16,
    [
      ["offset", 0],
      ["resv", 4],
      ["data", 8],
    ],
  ],
  [
    "io_uring_rsrc_update2",
    A.RSRC_UPDATE2,
    32,
    [
      ["offset", 0],
      ["resv", 4],
      ["data", 8],
      ["tags", 16],
      ["nr", 24],
      ["resv2", 28],
    ],
  ],
  [
    "iovec",
    A.IOVEC,
    16,
    [
      ["iov_base", 0],
      ["iov_len", 8],
    ],
  ],
  [
    "io_uring_buf",
    A.BUF,
    16,
    [
      ["addr", 0],
      ["len", 8],
      ["bid", 12],
      ["resv", 14],
    ],
  ],
  [
    "io_uring_buf_reg",
    A.BUF_REG,
    40,
    [
      ["ring_addr", 0],
      ["ring_entries", 8],
      ["bgid", 12],
      ["flags", 14],
      ["min_left", 16],
      ["resv", 20],
    ],
  ],
  [
    "io_uring_napi (kernel layout)",
    A.NAPI,
    16,
    [
      ["busy_poll_to", 0],
      ["prefer_busy_poll", 4],
      ["opcode", 5],
      ["pad", 6],
      ["op_param", 8],
      ["resv", 12],
    ],
  ],
  [
    "io_uring_region_desc",
    A.REGION_DESC,
    64,
    [
      ["user_addr", 0],
      ["size_", 8],
      ["flags", 16],
      ["id", 20],
      ["mmap_offset", 24],
      ["resv", 32],
    ],
  ],
  [
    "io_uring_mem_region_reg",
    A.MEM_REGION_REG,
    32,
    [
      ["region_uptr", 0],
      ["flags", 8],
      ["resv", 16],
    ],
  ],
  [
    "io_uring_query_hdr",
    A.QUERY_HDR,
    40,
    [
      ["next_entry", 0],
      ["query_data", 8],
      ["query_op", 16],
      ["size_", 20],
      ["result", 24],
      ["resv", 28],
    ],
  ],
  [
    "io_uring_query_opcode",
    A.QUERY_OPCODE,
    48,
    [
      ["nr_request_opcodes", 0],
      ["nr_register_opcodes", 4],
      ["feature_flags", 8],
      ["ring_setup_flags", 16],
      ["enter_flags", 24],
      ["sqe_flags", 32],
      ["nr_query_opcodes", 40],
      ["pad", 44],
    ],
  ],
  [
    "io_uring_query_zcrx",
    A.QUERY_ZCRX,
    40,
    [
      ["register_flags", 0],
      ["area_flags", 8],
      ["nr_ctrl_opcodes", 16],
      ["features", 20],
      ["rq_hdr_size", 24],
      ["rq_hdr_alignment", 28],
      ["resv2", 32],
    ],
  ],
  [
    "io_uring_zcrx_rqe",
    A.ZCRX_RQE,
    16,
    [
      ["off", 0],
      ["len", 8],
      ["pad", 12],
    ],
  ],
  [
    "io_uring_zcrx_cqe",
    A.ZCRX_CQE,
    16,
    [
      ["off", 0],
      ["pad", 8],
    ],
  ],
  [
    "io_uring_zcrx_offsets",
    A.ZCRX_OFFSETS,
    32,
    [
      ["head", 0],
      ["tail", 4],
      ["rqes", 8],
      ["resv2", 12],
      ["resv", 16],
    ],
  ],
  [
    "io_uring_zcrx_area_reg",
    A.ZCRX_AREA_REG,
    48,
    [
      ["addr", 0],
      ["len", 8],
      ["rq_area_token", 16],
      ["flags", 24],
      ["dmabuf_fd", 28],
      ["resv2", 32],
    ],
  ],
  [
    "io_uring_zcrx_ifq_reg",
    A.ZCRX_IFQ_REG,
    96,
    [
      ["if_idx", 0],
      ["if_rxq", 4],
      ["rq_entries", 8],
      ["flags", 12],
      ["area_ptr", 16],
      ["region_ptr", 24],
      ["offsets", 32],
      ["zcrx_id", 64],
      ["rx_buf_len", 68],
      ["event_desc", 72],
      ["resv", 80],
    ],
  ],
  [
    "zcrx_ctrl",
    A.ZCRX_CTRL,
    72,
    [
      ["zcrx_id", 0],
      ["op", 4],
      ["resv", 8],
      ["payload", 24],
    ],
  ],
  [
    "zcrx_event_desc",
    A.ZCRX_EVENT_DESC,
    96,
    [
      ["user_data", 0],
      ["type_mask", 8],
      ["flags", 12],
      ["stats_offset", 16],
      ["resv2", 24],
    ],
  ],
  [
    "zcrx_stats",
    A.ZCRX_STATS,
    16,
    [
      ["copy_count", 0],
      ["copy_bytes", 8],
    ],
  ],
  [
    "sockaddr_in",
    A.SOCKADDR_IN,
    16,
    [
      ["family", 0],
      ["port", 2],
      ["addr", 4],
    ],
  ],
  [
    "sockaddr_in6",
    A.SOCKADDR_IN6,
    28,
    [
      ["family", 0],
      ["port", 2],
      ["flowinfo", 4],
      ["addr", 8],
      ["scope_id", 24],
    ],
  ],
  [
    "msghdr",
    A.MSGHDR,
    56,
    [
      ["msg_name", 0],
      ["msg_namelen", 8],
      ["msg_iov", 16],
      ["msg_iovlen", 24],
      ["msg_control", 32],
      ["msg_controllen", 40],
      ["msg_flags", 48],
    ],
  ],
];

describe("struct sizes and offsets", () => {
  for (const [name, layout, size, fields] of STRUCTS) {
    test(`${name}: ${size} bytes`, () => {
      expect(layout.size).toBe(size);
      for (const [field, off] of fields) {
        expect({ field, off: layout[field] }).toEqual({ field, off });
      }
      // Every field the layout names starts inside the struct, or right at its end for a
      // flexible tail (probe ops[], the CQE32 half big_cqe); size32 is the CQE32 size itself.
      for (const [field, off] of Object.entries(layout)) {
        if (field === "size" || field === "size32") continue;
        const tail = field === "ops" || field === "big_cqe";
        expect({ field, inside: off >= 0 && (tail ? off === size : off < size) }).toEqual({ field, inside: true });
      }
    });
  }
  test("SQE128 and CQE32 sizes", () => {
    expect(A.SQE_SIZE).toBe(64);
    expect(A.SQE128_SIZE).toBe(128);
    expect(A.CQE.size32).toBe(32);
    expect(A.BUF_RING_TAIL).toBe(14);
  });
});

/** [name, value in src/abi, value in the reference]. */
type Row = [string, number, number];

const TABLES: Record<string, Row[]> = {
  "setup flags": [
    ["IOPOLL", A.IORING_SETUP_IOPOLL, 1],
    ["SQPOLL", A.IORING_SETUP_SQPOLL, 2],
    ["SQ_AFF", A.IORING_SETUP_SQ_AFF, 4],
    ["CQSIZE", A.IORING_SETUP_CQSIZE, 8],
    ["CLAMP", A.IORING_SETUP_CLAMP, 16],
    ["ATTACH_WQ", A.IORING_SETUP_ATTACH_WQ, 32],
    ["R_DISABLED", A.IORING_SETUP_R_DISABLED, 64],
    ["SUBMIT_ALL", A.IORING_SETUP_SUBMIT_ALL, 128],
    ["COOP_TASKRUN", A.IORING_SETUP_COOP_TASKRUN, 256],
    ["TASKRUN_FLAG", A.IORING_SETUP_TASKRUN_FLAG, 512],
    ["SQE128", A.IORING_SETUP_SQE128, 1024],
    ["CQE32", A.IORING_SETUP_CQE32, 2048],
    ["SINGLE_ISSUER", A.IORING_SETUP_SINGLE_ISSUER, 4096],
    ["DEFER_TASKRUN", A.IORING_SETUP_DEFER_TASKRUN, 8192],
    ["NO_MMAP", A.IORING_SETUP_NO_MMAP, 16384],
    ["REGISTERED_FD_ONLY", A.IORING_SETUP_REGISTERED_FD_ONLY, 32768],
    ["NO_SQARRAY", A.IORING_SETUP_NO_SQARRAY, 65536],
    ["HYBRID_IOPOLL", A.IORING_SETUP_HYBRID_IOPOLL, 1 << 17],
    ["CQE_MIXED", A.IORING_SETUP_CQE_MIXED, 1 << 18],
    ["SQE_MIXED", A.IORING_SETUP_SQE_MIXED, 1 << 19],
    ["SQ_REWIND", A.IORING_SETUP_SQ_REWIND, 1 << 20],
  ],
  "feature flags": [
    ["SINGLE_MMAP", A.IORING_FEAT_SINGLE_MMAP, 1 << 0],
    ["NODROP", A.IORING_FEAT_NODROP, 1 << 1],
    ["SUBMIT_STABLE", A.IORING_FEAT_SUBMIT_STABLE, 1 << 2],
    ["RW_CUR_POS", A.IORING_FEAT_RW_CUR_POS, 1 << 3],
    ["CUR_PERSONALITY", A.IORING_FEAT_CUR_PERSONALITY, 1 << 4],
    ["FAST_POLL", A.IORING_FEAT_FAST_POLL, 1 << 5],
    ["POLL_32BITS", A.IORING_FEAT_POLL_32BITS, 1 << 6],
    ["SQPOLL_NONFIXED", A.IORING_FEAT_SQPOLL_NONFIXED, 1 << 7],
    ["EXT_ARG", A.IORING_FEAT_EXT_ARG, 1 << 8],
    ["NATIVE_WORKERS", A.IORING_FEAT_NATIVE_WORKERS, 1 << 9],
    ["RSRC_TAGS", A.IORING_FEAT_RSRC_TAGS, 1 << 10],
    ["CQE_SKIP", A.IORING_FEAT_CQE_SKIP, 1 << 11],
    ["LINKED_FILE", A.IORING_FEAT_LINKED_FILE, 1 << 12],
    ["REG_REG_RING", A.IORING_FEAT_REG_REG_RING, 1 << 13],
    ["RECVSEND_BUNDLE", A.IORING_FEAT_RECVSEND_BUNDLE, 1 << 14],
    ["MIN_TIMEOUT", A.IORING_FEAT_MIN_TIMEOUT, 1 << 15],
    ["RW_ATTR", A.IORING_FEAT_RW_ATTR, 1 << 16],
    ["NO_IOWAIT", A.IORING_FEAT_NO_IOWAIT, 1 << 17],
  ],
  "ring flag words and mmap offsets": [
    ["IORING_SQ_NEED_WAKEUP", A.IORING_SQ_NEED_WAKEUP, 1],
    ["IORING_SQ_CQ_OVERFLOW", A.IORING_SQ_CQ_OVERFLOW, 2],
    ["IORING_SQ_TASKRUN", A.IORING_SQ_TASKRUN, 4],
    ["IORING_CQ_EVENTFD_DISABLED", A.IORING_CQ_EVENTFD_DISABLED, 1],
    ["IORING_OFF_SQ_RING", A.IORING_OFF_SQ_RING, 0],
    ["IORING_OFF_CQ_RING", A.IORING_OFF_CQ_RING, 0x8000000],
    ["IORING_OFF_SQES", A.IORING_OFF_SQES, 0x10000000],
    ["IORING_OFF_PBUF_RING", A.IORING_OFF_PBUF_RING, 0x80000000],
    ["IORING_OFF_PBUF_SHIFT", A.IORING_OFF_PBUF_SHIFT, 16],
    ["IORING_OFF_MMAP_MASK", A.IORING_OFF_MMAP_MASK, 0xf8000000],
  ],
  "SQE flags": [
    ["FIXED_FILE", A.IOSQE_FIXED_FILE, 0x01],
    ["IO_DRAIN", A.IOSQE_IO_DRAIN, 0x02],
    ["IO_LINK", A.IOSQE_IO_LINK, 0x04],
    ["IO_HARDLINK", A.IOSQE_IO_HARDLINK, 0x08],
    ["ASYNC", A.IOSQE_ASYNC, 0x10],
    ["BUFFER_SELECT", A.IOSQE_BUFFER_SELECT, 0x20],
    ["CQE_SKIP_SUCCESS", A.IOSQE_CQE_SKIP_SUCCESS, 0x40],
    ["IORING_FILE_INDEX_ALLOC", A.IORING_FILE_INDEX_ALLOC, 0xffffffff],
  ],
  opcodes: [
    ["NOP", A.IORING_OP_NOP, 0],
    ["READV", A.IORING_OP_READV, 1],
    ["WRITEV", A.IORING_OP_WRITEV, 2],
    ["FSYNC", A.IORING_OP_FSYNC, 3],
    ["READ_FIXED", A.IORING_OP_READ_FIXED, 4],
    ["WRITE_FIXED", A.IORING_OP_WRITE_FIXED, 5],
    ["POLL_ADD", A.IORING_OP_POLL_ADD, 6],
    ["POLL_REMOVE", A.IORING_OP_POLL_REMOVE, 7],
    ["SYNC_FILE_RANGE", A.IORING_OP_SYNC_FILE_RANGE, 8],
    ["SENDMSG", A.IORING_OP_SENDMSG, 9],
    ["RECVMSG", A.IORING_OP_RECVMSG, 10],
    ["TIMEOUT", A.IORING_OP_TIMEOUT, 11],
    ["TIMEOUT_REMOVE", A.IORING_OP_TIMEOUT_REMOVE, 12],
    ["ACCEPT", A.IORING_OP_ACCEPT, 13],
    ["ASYNC_CANCEL", A.IORING_OP_ASYNC_CANCEL, 14],
    ["LINK_TIMEOUT", A.IORING_OP_LINK_TIMEOUT, 15],
    ["CONNECT", A.IORING_OP_CONNECT, 16],
    ["FALLOCATE", A.IORING_OP_FALLOCATE, 17],
    ["OPENAT", A.IORING_OP_OPENAT, 18],
    ["CLOSE", A.IORING_OP_CLOSE, 19],
    ["FILES_UPDATE", A.IORING_OP_FILES_UPDATE, 20],
    ["STATX", A.IORING_OP_STATX, 21],
    ["READ", A.IORING_OP_READ, 22],
    ["WRITE", A.IORING_OP_WRITE, 23],
    ["FADVISE", A.IORING_OP_FADVISE, 24],
    ["MADVISE", A.IORING_OP_MADVISE, 25],
    ["SEND", A.IORING_OP_SEND, 26],
    ["RECV", A.IORING_OP_RECV, 27],
    ["OPENAT2", A.IORING_OP_OPENAT2, 28],
    ["EPOLL_CTL", A.IORING_OP_EPOLL_CTL, 29],
    ["SPLICE", A.IORING_OP_SPLICE, 30],
    ["PROVIDE_BUFFERS", A.IORING_OP_PROVIDE_BUFFERS, 31],
    ["REMOVE_BUFFERS", A.IORING_OP_REMOVE_BUFFERS, 32],
    ["TEE", A.IORING_OP_TEE, 33],
    ["SHUTDOWN", A.IORING_OP_SHUTDOWN, 34],
    ["RENAMEAT", A.IORING_OP_RENAMEAT, 35],
    ["UNLINKAT", A.IORING_OP_UNLINKAT, 36],
    ["MKDIRAT", A.IORING_OP_MKDIRAT, 37],
    ["SYMLINKAT", A.IORING_OP_SYMLINKAT, 38],
    ["LINKAT", A.IORING_OP_LINKAT, 39],
    ["MSG_RING", A.IORING_OP_MSG_RING, 40],
    ["FSETXATTR", A.IORING_OP_FSETXATTR, 41],
    ["SETXATTR", A.IORING_OP_SETXATTR, 42],
    ["FGETXATTR", A.IORING_OP_FGETXATTR, 43],
    ["GETXATTR", A.IORING_OP_GETXATTR, 44],
    ["SOCKET", A.IORING_OP_SOCKET, 45],
    ["URING_CMD", A.IORING_OP_URING_CMD, 46],
    ["SEND_ZC", A.IORING_OP_SEND_ZC, 47],
    ["SENDMSG_ZC", A.IORING_OP_SENDMSG_ZC, 48],
    ["READ_MULTISHOT", A.IORING_OP_READ_MULTISHOT, 49],
    ["WAITID", A.IORING_OP_WAITID, 50],
    ["FUTEX_WAIT", A.IORING_OP_FUTEX_WAIT, 51],
    ["FUTEX_WAKE", A.IORING_OP_FUTEX_WAKE, 52],
    ["FUTEX_WAITV", A.IORING_OP_FUTEX_WAITV, 53],
    ["FIXED_FD_INSTALL", A.IORING_OP_FIXED_FD_INSTALL, 54],
    ["FTRUNCATE", A.IORING_OP_FTRUNCATE, 55],
    ["BIND", A.IORING_OP_BIND, 56],
    ["LISTEN", A.IORING_OP_LISTEN, 57],
    ["RECV_ZC", A.IORING_OP_RECV_ZC, 58],
    ["EPOLL_WAIT", A.IORING_OP_EPOLL_WAIT, 59],
    ["READV_FIXED", A.IORING_OP_READV_FIXED, 60],
    ["WRITEV_FIXED", A.IORING_OP_WRITEV_FIXED, 61],
    ["PIPE", A.IORING_OP_PIPE, 62],
    ["NOP128", A.IORING_OP_NOP128, 63],
    ["URING_CMD128", A.IORING_OP_URING_CMD128, 64],
  ],
  "CQE flags": [
    ["F_BUFFER", A.IORING_CQE_F_BUFFER, 1 << 0],
    ["F_MORE", A.IORING_CQE_F_MORE, 1 << 1],
    ["F_SOCK_NONEMPTY", A.IORING_CQE_F_SOCK_NONEMPTY, 1 << 2],
    ["F_NOTIF", A.IORING_CQE_F_NOTIF, 1 << 3],
    ["F_BUF_MORE", A.IORING_CQE_F_BUF_MORE, 1 << 4],
    ["F_SKIP", A.IORING_CQE_F_SKIP, 1 << 5],
    ["F_32", A.IORING_CQE_F_32, 1 << 15],
    ["BUFFER_SHIFT", A.IORING_CQE_BUFFER_SHIFT, 16],
    ["NOTIF_USAGE_ZC_COPIED", A.IORING_NOTIF_USAGE_ZC_COPIED, 0x80000000],
  ],
  "send/recv, accept and NOP flags": [
    ["RECVSEND_POLL_FIRST", A.IORING_RECVSEND_POLL_FIRST, 1],
    ["RECV_MULTISHOT", A.IORING_RECV_MULTISHOT, 2],
    ["RECVSEND_FIXED_BUF", A.IORING_RECVSEND_FIXED_BUF, 4],
    ["SEND_ZC_REPORT_USAGE", A.IORING_SEND_ZC_REPORT_USAGE, 8],
    ["RECVSEND_BUNDLE", A.IORING_RECVSEND_BUNDLE, 16],
    ["SEND_VECTORIZED", A.IORING_SEND_VECTORIZED, 32],
    ["ACCEPT_MULTISHOT", A.IORING_ACCEPT_MULTISHOT, 1],
    ["ACCEPT_DONTWAIT", A.IORING_ACCEPT_DONTWAIT, 2],
    ["ACCEPT_POLL_FIRST", A.IORING_ACCEPT_POLL_FIRST, 4],
    ["NOP_INJECT_RESULT", A.IORING_NOP_INJECT_RESULT, 1],
    ["NOP_CQE32", A.IORING_NOP_CQE32, 1 << 5],
  ],
  "enter flags": [
    ["GETEVENTS", A.IORING_ENTER_GETEVENTS, 1],
    ["SQ_WAKEUP", A.IORING_ENTER_SQ_WAKEUP, 2],
    ["SQ_WAIT", A.IORING_ENTER_SQ_WAIT, 4],
    ["EXT_ARG", A.IORING_ENTER_EXT_ARG, 8],
    ["REGISTERED_RING", A.IORING_ENTER_REGISTERED_RING, 16],
    ["ABS_TIMER", A.IORING_ENTER_ABS_TIMER, 32],
    ["EXT_ARG_REG", A.IORING_ENTER_EXT_ARG_REG, 64],
    ["NO_IOWAIT", A.IORING_ENTER_NO_IOWAIT, 128],
    ["KERNEL_SIGSET_BYTES", A.KERNEL_SIGSET_BYTES, 8],
  ],
  "register opcodes": [
    ["REGISTER_BUFFERS", A.IORING_REGISTER_BUFFERS, 0],
    ["UNREGISTER_BUFFERS", A.IORING_UNREGISTER_BUFFERS, 1],
    ["REGISTER_FILES", A.IORING_REGISTER_FILES, 2],
    ["UNREGISTER_FILES", A.IORING_UNREGISTER_FILES, 3],
    ["REGISTER_EVENTFD", A.IORING_REGISTER_EVENTFD, 4],
    ["UNREGISTER_EVENTFD", A.IORING_UNREGISTER_EVENTFD, 5],
    ["REGISTER_FILES_UPDATE", A.IORING_REGISTER_FILES_UPDATE, 6],
    ["REGISTER_EVENTFD_ASYNC", A.IORING_REGISTER_EVENTFD_ASYNC, 7],
    ["REGISTER_PROBE", A.IORING_REGISTER_PROBE, 8],
    ["REGISTER_PERSONALITY", A.IORING_REGISTER_PERSONALITY, 9],
    ["UNREGISTER_PERSONALITY", A.IORING_UNREGISTER_PERSONALITY, 10],
    ["REGISTER_RESTRICTIONS", A.IORING_REGISTER_RESTRICTIONS, 11],
    ["REGISTER_ENABLE_RINGS", A.IORING_REGISTER_ENABLE_RINGS, 12],
    ["REGISTER_FILES2", A.IORING_REGISTER_FILES2, 13],
    ["REGISTER_FILES_UPDATE2", A.IORING_REGISTER_FILES_UPDATE2, 14],
    ["REGISTER_BUFFERS2", A.IORING_REGISTER_BUFFERS2, 15],
    ["REGISTER_BUFFERS_UPDATE", A.IORING_REGISTER_BUFFERS_UPDATE, 16],
    ["REGISTER_IOWQ_AFF", A.IORING_REGISTER_IOWQ_AFF, 17],
    ["UNREGISTER_IOWQ_AFF", A.IORING_UNREGISTER_IOWQ_AFF, 18],
    ["REGISTER_IOWQ_MAX_WORKERS", A.IORING_REGISTER_IOWQ_MAX_WORKERS, 19],
    ["REGISTER_RING_FDS", A.IORING_REGISTER_RING_FDS, 20],
    ["UNREGISTER_RING_FDS", A.IORING_UNREGISTER_RING_FDS, 21],
    ["REGISTER_PBUF_RING", A.IORING_REGISTER_PBUF_RING, 22],
    ["UNREGISTER_PBUF_RING", A.IORING_UNREGISTER_PBUF_RING, 23],
    ["REGISTER_SYNC_CANCEL", A.IORING_REGISTER_SYNC_CANCEL, 24],
    ["REGISTER_FILE_ALLOC_RANGE", A.IORING_REGISTER_FILE_ALLOC_RANGE, 25],
    ["REGISTER_PBUF_STATUS", A.IORING_REGISTER_PBUF_STATUS, 26],
    ["REGISTER_NAPI", A.IORING_REGISTER_NAPI, 27],
    ["UNREGISTER_NAPI", A.IORING_UNREGISTER_NAPI, 28],
    ["REGISTER_CLOCK", A.IORING_REGISTER_CLOCK, 29],
    ["REGISTER_CLONE_BUFFERS", A.IORING_REGISTER_CLONE_BUFFERS, 30],
    ["REGISTER_SEND_MSG_RING", A.IORING_REGISTER_SEND_MSG_RING, 31],
    ["REGISTER_ZCRX_IFQ", A.IORING_REGISTER_ZCRX_IFQ, 32],
    ["REGISTER_RESIZE_RINGS", A.IORING_REGISTER_RESIZE_RINGS, 33],
    ["REGISTER_MEM_REGION", A.IORING_REGISTER_MEM_REGION, 34],
    ["REGISTER_QUERY", A.IORING_REGISTER_QUERY, 35],
    ["REGISTER_ZCRX_CTRL", A.IORING_REGISTER_ZCRX_CTRL, 36],
    ["REGISTER_USE_REGISTERED_RING", A.IORING_REGISTER_USE_REGISTERED_RING, 0x80000000],
  ],
  "registration constants": [
    ["IO_URING_OP_SUPPORTED", A.IO_URING_OP_SUPPORTED, 1],
    ["IORING_RSRC_REGISTER_SPARSE", A.IORING_RSRC_REGISTER_SPARSE, 1],
    ["IORING_REGISTER_FILES_SKIP", A.IORING_REGISTER_FILES_SKIP, -2],
    ["IOU_PBUF_RING_MMAP", A.IOU_PBUF_RING_MMAP, 1],
    ["IOU_PBUF_RING_INC", A.IOU_PBUF_RING_INC, 2],
    ["PBUF_RING_MAX_ENTRIES", A.PBUF_RING_MAX_ENTRIES, 32768],
    ["IO_URING_NAPI_REGISTER_OP", A.IO_URING_NAPI_REGISTER_OP, 0],
    ["IO_URING_NAPI_STATIC_ADD_ID", A.IO_URING_NAPI_STATIC_ADD_ID, 1],
    ["IO_URING_NAPI_STATIC_DEL_ID", A.IO_URING_NAPI_STATIC_DEL_ID, 2],
    ["IO_URING_NAPI_TRACKING_DYNAMIC", A.IO_URING_NAPI_TRACKING_DYNAMIC, 0],
    ["IO_URING_NAPI_TRACKING_STATIC", A.IO_URING_NAPI_TRACKING_STATIC, 1],
    ["IO_URING_NAPI_TRACKING_INACTIVE", A.IO_URING_NAPI_TRACKING_INACTIVE, 255],
    ["IORING_MEM_REGION_TYPE_USER", A.IORING_MEM_REGION_TYPE_USER, 1],
    ["IORING_MEM_REGION_REG_WAIT_ARG", A.IORING_MEM_REGION_REG_WAIT_ARG, 1],
    ["IO_URING_QUERY_OPCODES", A.IO_URING_QUERY_OPCODES, 0],
    ["IO_URING_QUERY_ZCRX", A.IO_URING_QUERY_ZCRX, 1],
    ["IO_URING_QUERY_SCQ", A.IO_URING_QUERY_SCQ, 2],
    ["IORING_MAX_REG_BUFFERS", A.IORING_MAX_REG_BUFFERS, 16384],
    ["IORING_MAX_REG_BUFFER_BYTES", A.IORING_MAX_REG_BUFFER_BYTES, 1 << 30],
  ],
  "ZCRX constants": [
    ["IORING_ZCRX_AREA_SHIFT", A.IORING_ZCRX_AREA_SHIFT, 48],
    ["ZCRX_AREA_OFFSET_SPAN", A.ZCRX_AREA_OFFSET_SPAN, 2 ** 48],
    ["IORING_ZCRX_AREA_DMABUF", A.IORING_ZCRX_AREA_DMABUF, 1],
    ["ZCRX_REG_IMPORT", A.ZCRX_REG_IMPORT, 1],
    ["ZCRX_REG_NODEV", A.ZCRX_REG_NODEV, 2],
    ["ZCRX_FEATURE_RX_PAGE_SIZE", A.ZCRX_FEATURE_RX_PAGE_SIZE, 1],
    ["ZCRX_RQ_MAX_ENTRIES", A.ZCRX_RQ_MAX_ENTRIES, 32768],
    ["ZCRX_CTRL_FLUSH_RQ", A.ZCRX_CTRL_FLUSH_RQ, 0],
    ["ZCRX_CTRL_EXPORT", A.ZCRX_CTRL_EXPORT, 1],
  ],
  "errno (x86_64)": [
    ["EPERM", A.EPERM, 1],
    ["EINTR", A.EINTR, 4],
    ["EBADF", A.EBADF, 9],
    ["EAGAIN", A.EAGAIN, 11],
    ["ENOMEM", A.ENOMEM, 12],
    ["EFAULT", A.EFAULT, 14],
    ["EBUSY", A.EBUSY, 16],
    ["EEXIST", A.EEXIST, 17],
    ["ENODEV", A.ENODEV, 19],
    ["EINVAL", A.EINVAL, 22],
    ["ENOSPC", A.ENOSPC, 28],
    ["ERANGE", A.ERANGE, 34],
    ["ETIME", A.ETIME, 62],
    ["ENOTSOCK", A.ENOTSOCK, 88],
    ["EOPNOTSUPP", A.EOPNOTSUPP, 95],
    ["ENOBUFS", A.ENOBUFS, 105],
    ["ECANCELED", A.ECANCELED, 125],
  ],
};

describe("constants", () => {
  for (const [title, rows] of Object.entries(TABLES)) {
    test(title, () => {
      for (const [name, actual, expected] of rows) expect({ name, value: actual }).toEqual({ name, value: expected });
    });
  }

  test("the named lists agree with the constants", () => {
    const abi = A as unknown as Record<string, number>;
    for (const f of A.SETUP_FLAGS)
      expect({ name: f.name, value: f.value }).toEqual({ name: f.name, value: abi[`IORING_SETUP_${f.name}`]! });
    for (const f of A.FEATURES)
      expect({ name: f.name, value: f.value }).toEqual({ name: f.name, value: abi[`IORING_FEAT_${f.name}`]! });
    for (const o of A.OPCODES)
      expect({ name: o.name, op: o.op }).toEqual({ name: o.name, op: abi[`IORING_OP_${o.name}`]! });
    for (const [op, name] of Object.entries(A.REGISTER_NAMES))
      expect({ name, op: Number(op) }).toEqual({ name, op: abi[name]! });
    expect(A.opcodeName(A.IORING_OP_SEND_ZC)).toBe("SEND_ZC");
    expect(A.opcodeSince(A.IORING_OP_SEND_ZC)).toBe("6.0");
    expect(A.opcodeSince(A.IORING_OP_RECV_ZC)).toBe("6.15");
    expect(A.opcodeName(200)).toBe("OP_200");
    expect(A.errnoName(-22)).toBe("EINVAL");
    expect(A.errnoName(9999)).toBe("E9999");
    for (const [name, value] of Object.entries(A.ERRNO)) expect(A.errnoName(value)).toBe(name);
  });

  test("CQE flag helpers", () => {
    const flags = A.IORING_CQE_F_MORE | A.IORING_CQE_F_BUFFER | (37 << A.IORING_CQE_BUFFER_SHIFT);
    expect(A.cqeMore(flags)).toBe(true);
    expect(A.cqeNotif(flags)).toBe(false);
    expect(A.cqeHasBuffer(flags)).toBe(true);
    expect(A.cqeBufferId(flags)).toBe(37);
    expect(A.cqeNotif(A.IORING_CQE_F_NOTIF)).toBe(true);
  });
});

// The same layouts and every integer constant src/abi exports, checked by the C compiler against
// the UAPI header this machine has (<linux/io_uring.h> from linux-libc-dev: 6.1's on Debian 12).
// Each check is one `_Static_assert` on its own line, so a gcc error names the line: "static
// assertion failed" is a wrong number here; any other error (an undeclared name, an incomplete
// struct, no such member) means the header is older than the item, which is counted, not failed.
const CC = Bun.which("gcc") ?? Bun.which("cc");
const HEADER = "/usr/include/linux/io_uring.h";
const headerMissing =
  CC === null
    ? "no C compiler (gcc or cc) on PATH"
    : !(await Bun.file(HEADER).exists())
      ? `${HEADER} not installed (Debian: linux-libc-dev)`
      : null;

/** C spellings where src/abi names a field differently (sockaddr members, the `size` field). */
const C_FIELD: Record<string, Record<string, string>> = {
  sockaddr_in: { family: "sin_family", port: "sin_port", addr: "sin_addr" },
  sockaddr_in6: {
    family: "sin6_family",
    port: "sin6_port",
    flowinfo: "sin6_flowinfo",
    addr: "sin6_addr",
    scope_id: "sin6_scope_id",
  },
};

/** Members whose name moved as the struct grew: an older header spells the same bytes another way. */
const MOVED: Record<string, string> = {
  // 6.1's header: `__u16 pad` @14 and `__u64 resv[3]` @16; later kernels: flags @14, min_left @16
  // (IOU_PBUF_RING_INC's minimum) and `__u32 resv[5]` @20. Same 40 bytes, same zeroes.
  "io_uring_buf_reg.resv": "resv moved from @16 to @20 when min_left was added",
};

function headerChecks(): { line: string; id: string }[] {
  const checks: { line: string; id: string }[] = [];
  for (const [name, , size, fields] of STRUCTS) {
    if (name.includes(" ")) continue; // a layout the kernel keeps but the UAPI header does not spell this way
    checks.push({
      id: `sizeof(struct ${name}) == ${size}`,
      line: `_Static_assert(sizeof(struct ${name}) == ${size}, "size");`,
    });
    for (const [field, off] of fields) {
      if (field === "size32" || MOVED[`${name}.${field}`] !== undefined) continue; // the CQE32 size, not a member; or a moved name
      const member = C_FIELD[name]?.[field] ?? (field === "size_" ? "size" : field);
      checks.push({
        id: `offsetof(struct ${name}, ${member}) == ${off}`,
        line: `_Static_assert(offsetof(struct ${name}, ${member}) == ${off}, "offset");`,
      });
    }
  }
  for (const [name, value] of Object.entries(A)) {
    if (typeof value !== "number" || !Number.isInteger(value)) continue;
    if (!/^(IORING_|IOSQE_|IOU_|IO_URING_|ZCRX_|E[A-Z0-9]+$)/.test(name) || name.endsWith("_LAST")) continue;
    checks.push({ id: `${name} == ${value}`, line: `_Static_assert((long long)(${name}) == ${value}LL, "value");` });
  }
  return checks;
}

describeIf(headerMissing, "against the installed UAPI header", () => {
  test("every layout and constant the header has agrees with src/abi", async () => {
    const checks = headerChecks();
    const prologue = [
      "#include <stddef.h>",
      "#include <errno.h>",
      "#include <sys/socket.h>",
      "#include <sys/uio.h>",
      "#include <netinet/in.h>",
      "#include <linux/time_types.h>",
      "#include <linux/io_uring.h>",
    ];
    const source = [...prologue, ...checks.map((c) => c.line)].join("\n") + "\n";
    const dir = mkdtempSync(`${tmpdir()}/bun-uring-abi-`);
    await Bun.write(`${dir}/abi.c`, source);
    const run = Bun.spawnSync([CC!, "-std=gnu11", "-fsyntax-only", "-fmax-errors=0", `${dir}/abi.c`], {
      stderr: "pipe",
    });
    rmSync(dir, { recursive: true, force: true });
    const wrong = new Set<string>();
    const absent = new Set<string>();
    for (const m of run.stderr.toString().matchAll(/abi\.c:(\d+):\d+: error: (.*)/g)) {
      const check = checks[Number(m[1]) - prologue.length - 1];
      if (check === undefined) throw new Error(`gcc error outside the checks: ${m[0]}`);
      (m[2]!.includes("static assertion failed") ? wrong : absent).add(check.id);
    }
    for (const id of wrong) absent.delete(id);
    const checked = checks.length - absent.size - wrong.size;
    console.log(
      `UAPI header: ${checked} of ${checks.length} checks compiled and held; ${absent.size} name items this header is too old for`,
    );
    expect([...wrong]).toEqual([]);
    // The core of the ABI is in every header since 5.1: if it is not checked, the check is broken.
    for (const core of [
      "sizeof(struct io_uring_sqe) == 64",
      "offsetof(struct io_uring_sqe, addr3) == 48",
      "sizeof(struct io_uring_params) == 120",
      "IORING_OP_SEND_ZC == 47",
    ]) {
      expect({ core, absent: absent.has(core) }).toEqual({ core, absent: false });
    }
  });
});
