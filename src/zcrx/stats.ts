// Counters a receiver keeps: plain numbers on one object, updated in place (no allocation per
// chunk), read whenever the caller wants.

/** Number of power-of-two buckets of refill batch sizes: bucket b counts publishes of
 * 2^b .. 2^(b+1)-1 entries (32768 entries at most, so 16 buckets). */
export const BATCH_BUCKETS = 16;

export class ZcrxStats {
  /** Data CQEs turned into chunks. */
  chunks = 0;
  /** Bytes those chunks carried. */
  bytes = 0;
  /** Chunks released by the caller. */
  released = 0;
  /** RECV_ZC requests posted again after one ended without IORING_CQE_F_MORE. */
  rearms = 0;
  /** Of those, after -ENOSPC (the CQ had no room for a CQE). */
  rearmsEnospc = 0;
  /** Requests that ended with -ENOMEM: the area had no free buffer (the copy path's answer
   * when refills stop); re-armed once refills are published. */
  starvations = 0;
  /** Tail stores of the refill ring (one per drain that released something). */
  publishes = 0;
  /** Refill entries made visible to the kernel by those stores. */
  published = 0;
  /** The largest number of entries one store published. */
  batchMax = 0;
  /** Histogram of entries per publish, by power of two (see BATCH_BUCKETS). */
  readonly batchHistogram = new Uint32Array(BATCH_BUCKETS);
  /** Releases that found the refill ring full and waited in the pending list. */
  rqFull = 0;
  /** The most releases that were pending at once. */
  pendingHighWater = 0;
  /** ZCRX_CTRL_FLUSH_RQ calls (device-less zcrx) or simulated flushes. */
  flushes = 0;
  /** Streams that ended: EOF (res 0) or an error. */
  ends = 0;
  /** Exceptions thrown by onData: the batch went on after each, and the chunk went back. */
  handlerErrors = 0;
  /** ZCRX_EVENT_COPY CQEs (7.2): the kernel copied data into the area. One-shot and left
   * un-armed, so 1 at most: ZcrxIfq.copyStats() counts the copies. */
  copyEvents = 0;
  /** ZCRX_EVENT_ALLOC_FAIL CQEs (7.2): the queue found no free buffer in the area. */
  allocFailEvents = 0;
  /** Event CQEs of a type this library does not know. */
  otherEvents = 0;

  /** Mean refill entries per publish. */
  get batchMean(): number {
    return this.publishes === 0 ? 0 : this.published / this.publishes;
  }

  /** JSON.stringify(stats) prints the snapshot. */
  toJSON(): Record<string, number | number[]> {
    return this.snapshot();
  }

  /** A plain object copy, for JSON output. */
  snapshot(): Record<string, number | number[]> {
    return {
      chunks: this.chunks,
      bytes: this.bytes,
      released: this.released,
      rearms: this.rearms,
      rearms_enospc: this.rearmsEnospc,
      starvations: this.starvations,
      publishes: this.publishes,
      published: this.published,
      batch_mean: this.batchMean,
      batch_max: this.batchMax,
      batch_histogram: Array.from(this.batchHistogram),
      rq_full: this.rqFull,
      pending_high_water: this.pendingHighWater,
      flushes: this.flushes,
      ends: this.ends,
      handler_errors: this.handlerErrors,
      copy_events: this.copyEvents,
      alloc_fail_events: this.allocFailEvents,
      other_events: this.otherEvents,
    };
  }
}
