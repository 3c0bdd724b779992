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
export const ZCRX_AREA_REG = { size: 48, addr: 0, len: 8, rq_area_token: 16, flags: 24, dmabuf_fd: 28, resv2: 32 } as const;
export const IORING_ZCRX_AREA_DMABUF = 1;

/** struct io_uring_zcrx_ifq_reg (96 bytes). */
export const ZCRX_IFQ_REG = {
  size: 96,
  if_idx: 0,
  if_rxq: 4,
  rq_entries: 8, // in/out: the kernel rounds up to a power of two and writes it back
  flags: 12,
  area_ptr: 16,
  region_ptr: 24,
  offsets: 32, // struct io_uring_zcrx_offsets (out)
  zcrx_id: 64, // out
  rx_buf_len: 68, // after 6.18 (was __resv2; must be 0 on 6.18)
  resv: 72, // u64[3], must be 0
} as const;

/** ifq registration flags (after 6.18). */
export const ZCRX_REG_IMPORT = 1;
export const ZCRX_REG_NODEV = 2; // 7.1: a zcrx with no NIC; data is copied into the area
export const ZCRX_FEATURE_RX_PAGE_SIZE = 1;
/** Largest refill ring the kernel accepts without IORING_SETUP_CLAMP. */
export const ZCRX_RQ_MAX_ENTRIES = 32768;

/** struct zcrx_ctrl (72 bytes) for IORING_REGISTER_ZCRX_CTRL (after 6.18). */
export const ZCRX_CTRL = { size: 72, zcrx_id: 0, op: 4, resv: 8, payload: 24 } as const;
export const ZCRX_CTRL_FLUSH_RQ = 0;
export const ZCRX_CTRL_EXPORT = 1;

/** First kernel with each ZCRX capability, for error messages. */
export const ZCRX_SINCE = {
  recvZc: "6.15",
  cqeMixed: "6.18",
  nodev: "7.1",
  ctrl: "7.0",
  query: "7.0",
} as const;
