// io_uring_register(2): opcodes and argument structs. Names are the kernel's.

export const IORING_REGISTER_BUFFERS = 0; // 5.1
export const IORING_UNREGISTER_BUFFERS = 1; // 5.1
export const IORING_REGISTER_FILES = 2; // 5.1
export const IORING_UNREGISTER_FILES = 3; // 5.1
export const IORING_REGISTER_EVENTFD = 4; // 5.2
export const IORING_UNREGISTER_EVENTFD = 5; // 5.2
export const IORING_REGISTER_FILES_UPDATE = 6; // 5.5
export const IORING_REGISTER_EVENTFD_ASYNC = 7; // 5.6
export const IORING_REGISTER_PROBE = 8; // 5.6
export const IORING_REGISTER_PERSONALITY = 9; // 5.6
export const IORING_UNREGISTER_PERSONALITY = 10; // 5.6
export const IORING_REGISTER_RESTRICTIONS = 11; // 5.10
export const IORING_REGISTER_ENABLE_RINGS = 12; // 5.10
export const IORING_REGISTER_FILES2 = 13; // 5.13
export const IORING_REGISTER_FILES_UPDATE2 = 14; // 5.13
export const IORING_REGISTER_BUFFERS2 = 15; // 5.13
export const IORING_REGISTER_BUFFERS_UPDATE = 16; // 5.13
export const IORING_REGISTER_IOWQ_AFF = 17; // 5.14
export const IORING_UNREGISTER_IOWQ_AFF = 18; // 5.14
export const IORING_REGISTER_IOWQ_MAX_WORKERS = 19; // 5.15
export const IORING_REGISTER_RING_FDS = 20; // 5.18
export const IORING_UNREGISTER_RING_FDS = 21; // 5.18
export const IORING_REGISTER_PBUF_RING = 22; // 5.19
export const IORING_UNREGISTER_PBUF_RING = 23; // 5.19
export const IORING_REGISTER_SYNC_CANCEL = 24; // 6.0
export const IORING_REGISTER_FILE_ALLOC_RANGE = 25; // 6.0
export const IORING_REGISTER_PBUF_STATUS = 26; // 6.8
export const IORING_REGISTER_NAPI = 27; // 6.9
export const IORING_UNREGISTER_NAPI = 28; // 6.9
export const IORING_REGISTER_CLOCK = 29; // 6.12
export const IORING_REGISTER_CLONE_BUFFERS = 30; // 6.12
export const IORING_REGISTER_SEND_MSG_RING = 31; // 6.13
export const IORING_REGISTER_ZCRX_IFQ = 32; // 6.15
export const IORING_REGISTER_RESIZE_RINGS = 33; // 6.13
export const IORING_REGISTER_MEM_REGION = 34; // 6.13
export const IORING_REGISTER_QUERY = 35; // 6.18
export const IORING_REGISTER_ZCRX_CTRL = 36; // after 6.18
/** OR'd into the opcode: fd is a registered ring index (since 6.3). */
export const IORING_REGISTER_USE_REGISTERED_RING = 0x80000000;

/** Register opcode names, for errors. */
export const REGISTER_NAMES: Readonly<Record<number, string>> = {
  [IORING_REGISTER_BUFFERS]: "IORING_REGISTER_BUFFERS",
  [IORING_UNREGISTER_BUFFERS]: "IORING_UNREGISTER_BUFFERS",
  [IORING_REGISTER_FILES]: "IORING_REGISTER_FILES",
  [IORING_UNREGISTER_FILES]: "IORING_UNREGISTER_FILES",
  [IORING_REGISTER_EVENTFD]: "IORING_REGISTER_EVENTFD",
  [IORING_UNREGISTER_EVENTFD]: "IORING_UNREGISTER_EVENTFD",
  [IORING_REGISTER_FILES_UPDATE]: "IORING_REGISTER_FILES_UPDATE",
  [IORING_REGISTER_EVENTFD_ASYNC]: "IORING_REGISTER_EVENTFD_ASYNC",
  [IORING_REGISTER_PROBE]: "IORING_REGISTER_PROBE",
  [IORING_REGISTER_ENABLE_RINGS]: "IORING_REGISTER_ENABLE_RINGS",
  [IORING_REGISTER_FILES2]: "IORING_REGISTER_FILES2",
  [IORING_REGISTER_FILES_UPDATE2]: "IORING_REGISTER_FILES_UPDATE2",
  [IORING_REGISTER_BUFFERS2]: "IORING_REGISTER_BUFFERS2",
  [IORING_REGISTER_BUFFERS_UPDATE]: "IORING_REGISTER_BUFFERS_UPDATE",
  [IORING_REGISTER_RING_FDS]: "IORING_REGISTER_RING_FDS",
  [IORING_UNREGISTER_RING_FDS]: "IORING_UNREGISTER_RING_FDS",
  [IORING_REGISTER_PBUF_RING]: "IORING_REGISTER_PBUF_RING",
  [IORING_UNREGISTER_PBUF_RING]: "IORING_UNREGISTER_PBUF_RING",
  [IORING_REGISTER_NAPI]: "IORING_REGISTER_NAPI",
  [IORING_UNREGISTER_NAPI]: "IORING_UNREGISTER_NAPI",
  [IORING_REGISTER_ZCRX_IFQ]: "IORING_REGISTER_ZCRX_IFQ",
  [IORING_REGISTER_MEM_REGION]: "IORING_REGISTER_MEM_REGION",
  [IORING_REGISTER_QUERY]: "IORING_REGISTER_QUERY",
  [IORING_REGISTER_ZCRX_CTRL]: "IORING_REGISTER_ZCRX_CTRL",
};

/** struct io_uring_probe (16 bytes + 8 per op). */
export const PROBE = { size: 16, last_op: 0, ops_len: 1, resv: 2, resv2: 4, ops: 16 } as const;
/** struct io_uring_probe_op (8 bytes). */
export const PROBE_OP = { size: 8, op: 0, resv: 1, flags: 2, resv2: 4 } as const;
export const IO_URING_OP_SUPPORTED = 1 << 0;

/** struct io_uring_rsrc_register (32 bytes), for REGISTER_BUFFERS2 / REGISTER_FILES2. */
export const RSRC_REGISTER = { size: 32, nr: 0, flags: 4, resv2: 8, data: 16, tags: 24 } as const;
export const IORING_RSRC_REGISTER_SPARSE = 1 << 0; // 5.19
/** struct io_uring_rsrc_update (16 bytes), for REGISTER_RING_FDS and FILES_UPDATE. */
export const RSRC_UPDATE = { size: 16, offset: 0, resv: 4, data: 8 } as const;
/** struct io_uring_rsrc_update2 (32 bytes), for BUFFERS_UPDATE / FILES_UPDATE2. */
export const RSRC_UPDATE2 = { size: 32, offset: 0, resv: 4, data: 8, tags: 16, nr: 24, resv2: 28 } as const;
export const IORING_REGISTER_FILES_SKIP = -2;

/** struct iovec (16 bytes). */
export const IOVEC = { size: 16, iov_base: 0, iov_len: 8 } as const;

/** struct io_uring_buf (16 bytes): one provided-buffer ring entry. The ring's u16 tail overlays
 * the resv field of entry 0 (byte 14). */
export const BUF = { size: 16, addr: 0, len: 8, bid: 12, resv: 14 } as const;
export const BUF_RING_TAIL = 14;
/** struct io_uring_buf_reg (40 bytes), for REGISTER_PBUF_RING. */
export const BUF_REG = {
  size: 40,
  ring_addr: 0,
  ring_entries: 8,
  bgid: 12,
  flags: 14,
  min_left: 16,
  resv: 20,
} as const;
export const IOU_PBUF_RING_MMAP = 1 << 0; // 6.4
export const IOU_PBUF_RING_INC = 1 << 1; // 6.12
/** Largest provided-buffer ring the kernel accepts (entries). */
export const PBUF_RING_MAX_ENTRIES = 32768;

/** struct io_uring_napi (16 bytes), kernel layout (6.13+): liburing's header still shows the
 * older padding, which is identical on the wire when zero-filled. */
export const NAPI = {
  size: 16,
  busy_poll_to: 0,
  prefer_busy_poll: 4,
  opcode: 5,
  pad: 6,
  op_param: 8,
  resv: 12,
} as const;
export const IO_URING_NAPI_REGISTER_OP = 0;
export const IO_URING_NAPI_STATIC_ADD_ID = 1;
export const IO_URING_NAPI_STATIC_DEL_ID = 2;
export const IO_URING_NAPI_TRACKING_DYNAMIC = 0;
export const IO_URING_NAPI_TRACKING_STATIC = 1;
export const IO_URING_NAPI_TRACKING_INACTIVE = 255;

/** struct io_uring_region_desc (64 bytes). */
export const REGION_DESC = { size: 64, user_addr: 0, size_: 8, flags: 16, id: 20, mmap_offset: 24, resv: 32 } as const;
export const IORING_MEM_REGION_TYPE_USER = 1;
/** struct io_uring_mem_region_reg (32 bytes). */
export const MEM_REGION_REG = { size: 32, region_uptr: 0, flags: 8, resv: 16 } as const;
export const IORING_MEM_REGION_REG_WAIT_ARG = 1;

/** struct io_uring_query_hdr (40 bytes), for REGISTER_QUERY (6.18+). */
export const QUERY_HDR = {
  size: 40,
  next_entry: 0,
  query_data: 8,
  query_op: 16,
  size_: 20,
  result: 24,
  resv: 28,
} as const;
export const IO_URING_QUERY_OPCODES = 0; // 6.18
export const IO_URING_QUERY_ZCRX = 1; // after 6.18
export const IO_URING_QUERY_SCQ = 2; // after 6.18
/** struct io_uring_query_opcode (48 bytes). */
export const QUERY_OPCODE = {
  size: 48,
  nr_request_opcodes: 0,
  nr_register_opcodes: 4,
  feature_flags: 8,
  ring_setup_flags: 16,
  enter_flags: 24,
  sqe_flags: 32,
  nr_query_opcodes: 40,
  pad: 44,
} as const;
/** struct io_uring_query_zcrx (40 bytes). */
export const QUERY_ZCRX = {
  size: 40,
  register_flags: 0,
  area_flags: 8,
  nr_ctrl_opcodes: 16,
  features: 20,
  rq_hdr_size: 24,
  rq_hdr_alignment: 28,
  resv2: 32,
} as const;

/** Limits of resource registration (io_uring/rsrc.c): at most IORING_MAX_REG_BUFFERS registered
 * buffers (5.1), each at most 1 GiB (io_buffer_validate refuses larger with EFAULT), and at most
 * IORING_MAX_FIXED_FILES registered files (5.1; also bounded by RLIMIT_NOFILE). */
export const IORING_MAX_REG_BUFFERS = 1 << 14;
export const IORING_MAX_REG_BUFFER_BYTES = 1 << 30;
export const IORING_MAX_FIXED_FILES = 1 << 20;
