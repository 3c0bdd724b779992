// The ops module's public part: prep functions, the SQE views and the checked field writers. The
// raw writers in sqe.ts (writeOpFlags, writeUserData, idleSlot...) store without checks and stay
// internal to the library, which calls them only with values it has checked.
export {
  type SqeMemory,
  sqeMemory,
  wordOf,
  putU64,
  getU64,
  prepRw,
  prepRwFlags,
  setOpFlags,
  setIoprio,
  setBufIndex,
  addSqeFlags,
  setUserData,
  type SqeFlagOptions,
  sqeFlags,
  SLOT_FREE,
  SLOT_TAKEN,
  SLOT_PREPARED,
  SLOT_OWNED,
  SLOT_LOOSE,
} from "./sqe.ts";
export * from "./prep.ts";
