// What the kernel's zcrx supports, asked once through IORING_REGISTER_QUERY with
// IO_URING_QUERY_ZCRX (the query liburing test/zcrx.c query_zcrx makes). Kernels before the query
// existed (6.18 answers -EOPNOTSUPP in the entry's result) get null: no NODEV, no IMPORT, no
// ZCRX_CTRL, no rx_buf_len.
import { addressOf, sys } from "../../ffi/index.ts";
import * as R from "../abi/register.ts";
import { ZCRX_CTRL_FLUSH_RQ, ZCRX_FEATURE_RX_PAGE_SIZE, ZCRX_REG_IMPORT, ZCRX_REG_NODEV } from "../abi/zcrx.ts";
import type { RefillHeader } from "./sizes.ts";

export interface ZcrxQuery {
  /** ZCRX_REG_* flags the kernel accepts at registration. */
  readonly registerFlags: number;
  /** IORING_ZCRX_AREA_* flags it accepts for the area. */
  readonly areaFlags: number;
  /** ZCRX_CTRL opcodes it implements (0..n-1). */
  readonly nrCtrlOpcodes: number;
  /** ZCRX_FEATURE_* bits. */
  readonly features: number;
  /** Refill ring header size and alignment (where the RQEs may start). */
  readonly rqHeader: RefillHeader;
  readonly nodev: boolean;
  readonly import: boolean;
  readonly flushRq: boolean;
  readonly rxBufLen: boolean;
}

let cached: ZcrxQuery | null | undefined;

/** IO_URING_QUERY_ZCRX, or null when this kernel cannot answer it. Cached per process. */
export function queryZcrx(): ZcrxQuery | null {
  if (cached !== undefined) return cached;
  const hdr = new Uint8Array(R.QUERY_HDR.size);
  const data = new Uint8Array(R.QUERY_ZCRX.size);
  const hv = new DataView(hdr.buffer);
  hv.setBigUint64(R.QUERY_HDR.query_data, BigInt(addressOf(data)), true);
  hv.setUint32(R.QUERY_HDR.query_op, R.IO_URING_QUERY_ZCRX, true);
  hv.setUint32(R.QUERY_HDR.size_, R.QUERY_ZCRX.size, true);
  // fd -1: REGISTER_QUERY needs no ring (io_uring_register accepts -1 only for it).
  const ret = sys.io_uring_register(0xffffffff, R.IORING_REGISTER_QUERY, hdr, 0);
  if (ret < 0 || hv.getInt32(R.QUERY_HDR.result, true) < 0) {
    cached = null;
    return cached;
  }
  const dv = new DataView(data.buffer);
  const registerFlags = Number(dv.getBigUint64(R.QUERY_ZCRX.register_flags, true));
  const nrCtrlOpcodes = dv.getUint32(R.QUERY_ZCRX.nr_ctrl_opcodes, true);
  const features = dv.getUint32(R.QUERY_ZCRX.features, true);
  const hdrSize = dv.getUint32(R.QUERY_ZCRX.rq_hdr_size, true);
  const hdrAlign = dv.getUint32(R.QUERY_ZCRX.rq_hdr_alignment, true);
  cached = {
    registerFlags,
    areaFlags: Number(dv.getBigUint64(R.QUERY_ZCRX.area_flags, true)),
    nrCtrlOpcodes,
    features,
    rqHeader: { size: hdrSize, alignment: hdrAlign > 0 ? hdrAlign : 1 },
    nodev: (registerFlags & ZCRX_REG_NODEV) !== 0,
    import: (registerFlags & ZCRX_REG_IMPORT) !== 0,
    flushRq: nrCtrlOpcodes > ZCRX_CTRL_FLUSH_RQ,
    rxBufLen: (features & ZCRX_FEATURE_RX_PAGE_SIZE) !== 0,
  };
  return cached;
}
