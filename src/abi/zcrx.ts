// Zero-copy receive (ZCRX, since 6.15): the ifq registration structs, the refill queue entry, the
// 16-byte tail of a RECV_ZC CQE. Names are the kernel's (include/uapi/linux/io_uring/zcrx.h).

/** struct io_uring_zcrx_rqe (16 bytes): one refill queue entry. */
export const ZCRX_RQE = { size: 16, off: 0, len: 8, pad: 12 } as const;

/** struct io_uring_zcrx_cqe (16 bytes): bytes 16..31 of a 32-byte RECV_ZC CQE. */
export const ZCRX_CQE = { size: 16, off: 0, pad: 8 } as const;

/** Area id lives in the top 16 bits of a zcrx offset; the rest is the byte offset in the area. */
export const IORING_ZCRX_AREA_SHIFT = 48;
/** 2^48 as a number: the byte-offset part of a zcrx offset is `off % ZCRX_AREA_OFFSET_SPAN`. */
export const ZCRX_AREA_OFFSET_SPAN = 2 ** 48;

/** struct io_uring_zcrx_offsets (32 bytes): where head, tail and the entries are in the refill
 * region. Written by the kernel. */
export const ZCRX_OFFSETS = { size: 32, head: 0, tail: 4, rqes: 8, resv2: 12, resv: 16 } as const;

/** struct io_uring_zcrx_area_reg (48 bytes). */
export const ZCRX_AREA_REG = {
  size: 48,
  addr: 0,
  len: 8,
  rq_area_token: 16,
  flags: 24,
  dmabuf_fd: 28,
  resv2: 32,
} as const;
export const IORING_ZCRX_AREA_DMABUF = 1;

/** struct io_uring_zcrx_ifq_reg (96 bytes). */
export const ZCRX_IFQ_REG = {
  size: 96,
  if_idx: 0, // with ZCRX_REG_IMPORT: the fd ZCRX_CTRL_EXPORT returned
  if_rxq: 4,
  rq_entries: 8, // in/out: the kernel rounds up to a power of two and writes it back
  flags: 12,
  area_ptr: 16,
  region_ptr: 24,
  offsets: 32, // struct io_uring_zcrx_offsets (out)
  zcrx_id: 64, // out
  rx_buf_len: 68, // 7.0 (was __resv2; must be 0 before)
  event_desc: 72, // 7.2: pointer to struct zcrx_event_desc (was __resv[0])
  resv: 80, // u64[2], must be 0
} as const;

/** ifq registration flags. */
export const ZCRX_REG_IMPORT = 1; // 6.19: share an exported ifq (if_idx = its fd)
export const ZCRX_REG_NODEV = 2; // 7.1: a zcrx with no NIC; data is copied into the area
/** ZCRX_FEATURE_* bits of IO_URING_QUERY_ZCRX's features. */
export const ZCRX_FEATURE_RX_PAGE_SIZE = 1;
export const ZCRX_FEATURE_EVENT = 2; // 7.2
/** Largest refill ring the kernel accepts without IORING_SETUP_CLAMP. */
export const ZCRX_RQ_MAX_ENTRIES = 32768;

/** struct zcrx_ctrl (72 bytes) for IORING_REGISTER_ZCRX_CTRL (6.19). */
export const ZCRX_CTRL = { size: 72, zcrx_id: 0, op: 4, resv: 8, payload: 24 } as const;
export const ZCRX_CTRL_FLUSH_RQ = 0;
export const ZCRX_CTRL_EXPORT = 1; // payload: struct zcrx_ctrl_export { u32 zcrx_fd (out) }
export const ZCRX_CTRL_ARM_EVENT = 2; // 7.2; payload: struct zcrx_ctrl_arm_event { u32 event_type }

/** enum zcrx_event_type (7.2): what an event CQE reports. */
export const ZCRX_EVENT_ALLOC_FAIL = 0; // the area had no free buffer
export const ZCRX_EVENT_COPY = 1; // data was copied into the area, not received in place
/** struct zcrx_event_desc (96 bytes, 7.2): where events go and where the copy counters live. */
export const ZCRX_EVENT_DESC = {
  size: 96,
  user_data: 0,
  type_mask: 8,
  flags: 12,
  stats_offset: 16,
  resv2: 24,
} as const;
export const ZCRX_EVENT_DESC_FLAG_STATS = 1;
/** struct zcrx_stats (16 bytes, 7.2), in the refill region at stats_offset. */
export const ZCRX_STATS = { size: 16, copy_count: 0, copy_bytes: 8 } as const;

/** First kernel with each ZCRX capability, for error messages. Sources, checked against the
 * kernel where a kernel could answer:
 * - recvZc 6.15: IORING_OP_RECV_ZC and IORING_REGISTER_ZCRX_IFQ (io_uring/zcrx.c first
 *   released in 6.15).
 * - cqeMixed 6.18: IORING_SETUP_CQE_MIXED, the alternative to CQE32 for RECV_ZC.
 * - ctrl, importExport, query 6.19: the series "io_uring/zcrx: export zcrx via a file"
 *   ([PATCH v4 11/12], posted 2025-11-03, during 6.18-rc, for the 6.19 merge window) adds
 *   ZCRX_CTRL_EXPORT to IORING_REGISTER_ZCRX_CTRL and ZCRX_REG_IMPORT; the kernel's first
 *   io_uring/query.c io_query_zcrx reports register_flags = ZCRX_REG_IMPORT and
 *   nr_ctrl_opcodes, no NODEV and no features (so it predates both). On 6.18.44 (this project's
 *   host) IO_URING_QUERY_ZCRX answers -EOPNOTSUPP in the entry and ZCRX_CTRL does not exist.
 *   An earlier table here said 7.0 for ctrl and query; that was the release after.
 * - rxBufLen 7.0: ZCRX_FEATURE_RX_PAGE_SIZE, reported in the query's features field, which the
 *   first query did not fill.
 * - nodev 7.1: ZCRX_REG_NODEV (the VM tier's Debian 7.2.13 kernel accepts it; 6.18 refuses).
 * - events 7.2: ZCRX_FEATURE_EVENT, struct zcrx_event_desc, ZCRX_CTRL_ARM_EVENT and struct
 *   zcrx_stats {copy_count, copy_bytes}, as in Debian 7.2.13's include/uapi/linux/io_uring/zcrx.h
 *   and the kernel tree's header of that release. */
export const ZCRX_SINCE = {
  recvZc: "6.15",
  cqeMixed: "6.18",
  ctrl: "6.19",
  importExport: "6.19",
  query: "6.19",
  rxBufLen: "7.0",
  nodev: "7.1",
  events: "7.2",
} as const;
