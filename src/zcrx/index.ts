// Zero-copy receive: registration, the area, the refill ring and the receiver.
export { ZcrxIfq, registerZcrxIfq, zcrxRingProblem, ifIndexOf, importZcrx, ImportedZcrx, sharedQueueFrom, zcrxRingDefaults, type ZcrxIfqOptions, type ZcrxSharedQueue, type PostableZcrxQueue, type ZcrxPlacement } from "./ifq.ts";
export { ZcrxReceiver, CHUNK_INDEX_BITS_MAX, type RecvZcHandler, type RecvOptions, type ReceiverOptions, type ZcrxSource, type RefillLayout } from "./receiver.ts";
export { ZcrxStats, BATCH_BUCKETS } from "./stats.ts";
export { createArea, HUGE_PAGE_BYTES, type AreaMemory, type ZcrxArea } from "./area.ts";
export { refillRingBytes, areaChunks, isPowerOfTwo, roundUpPowerOfTwo, DEFAULT_REFILL_HEADER, type RefillHeader } from "./sizes.ts";
export { queryZcrx, type ZcrxQuery } from "./query.ts";
export { explainRegisterError, type RegisterContext } from "./errors.ts";
export { planZcrxWorkers, startZcrxWorkers, type ZcrxWorkerPlan, type PlanOptions } from "./workers.ts";
export { RefillLock } from "./refill-lock.ts";
