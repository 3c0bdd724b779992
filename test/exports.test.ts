// The public surface, pinned: each entry point in package.json's `exports`, imported by the
// package's own name as an application imports it, must export exactly the runtime names listed
// here. Adding, removing or moving a public name means changing this list on purpose.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  exports: Record<string, string>;
};

/** Runtime names per entry point (types are not visible at run time and are not pinned). */
const PINNED: Record<string, string[]> = {
  ".": [
    // the async API
    "openRing",
    "AsyncRing",
    "TcpListener",
    "AsyncSocket",
    "TcpSocket",
    "UdpSocket",
    "SendOp",
    "RecvStream",
    "RecvFromStream",
    "TimeoutError",
    "ZcrxStream",
    "ZcrxChunk",
    // the ring and its error
    "Ring",
    "describeCapabilities",
    "UringError",
    // what a terminated Worker left open
    "reclaimWorker",
    "reclaimDeadThreads",
    // zero-copy send
    "ZcSender",
    "FixedBufferPool",
    // zero-copy receive
    "ZcrxIfq",
    "registerZcrxIfq",
    "importZcrx",
    "ImportedZcrx",
    "sharedQueueFrom",
    "ZcrxReceiver",
    "RefillLock",
    "queryZcrx",
    "planZcrxWorkers",
    "startZcrxWorkers",
  ],
  "./ring": [
    "Ring",
    "CqeBatch",
    "describeCapabilities",
    "UringError",
    "OpTable",
    "OP_SCRATCH_BYTES",
    "kernelRelease",
    "kernelAtLeast",
    "supportedSetupFlags",
    "LoopDriver",
    "addressOf",
    // memory
    "allocShared",
    "mapAnonymous",
    "mapFd",
    "unmapRegion",
    "pageAlign",
    "PAGE_SIZE",
    // registration
    "registerBuffers",
    "registerBuffersSparse",
    "updateBuffers",
    "unregisterBuffers",
    "registeredBuffers",
    "BufferTable",
    "registerFiles",
    "registerFilesSparse",
    "updateFiles",
    "unregisterFiles",
    "ProvidedBufferRing",
    "bufRingBytes",
    "registerEventfd",
    "unregisterEventfd",
    "registerNapi",
    "unregisterNapi",
    // SQE views and the checked writers
    "sqeMemory",
    "sqeFlags",
    "setOpFlags",
    "setIoprio",
    "setBufIndex",
    "addSqeFlags",
    "setUserData",
    // prep functions
    "prepRw",
    "prepRwFlags",
    "prepNop",
    "prepRead",
    "prepWrite",
    "prepReadFixed",
    "prepWriteFixed",
    "prepPollAdd",
    "prepTimeout",
    "prepTimeoutRemove",
    "prepLinkTimeout",
    "prepCancel64",
    "prepCancelFd",
    "prepCancelFdOp",
    "prepClose",
    "prepCloseDirect",
    "prepSocket",
    "prepBind",
    "prepListen",
    "prepConnect",
    "prepAccept",
    "prepMultishotAccept",
    "prepShutdown",
    "prepSetsockopt",
    "prepSend",
    "prepSendSetAddr",
    "prepSendVectorized",
    "prepSendmsg",
    "prepRecv",
    "prepRecvMultishot",
    "prepRecvSetLimit",
    "prepRecvmsg",
    "prepRecvmsgMultishot",
    "prepSendZc",
    "prepSendZcFixed",
    "prepSendZcSetNotifUserData",
    "prepSendZcVectorized",
    "prepSendmsgZc",
    "prepSendmsgZcFixed",
    "prepRecvZc",
    // addresses and socket operations in callback form
    "sockaddr",
    "encodeSockaddr",
    "decodeSockaddr",
    "familyOf",
    "formatAddress",
    "parseIPv4",
    "parseIPv6",
    "SOCKADDR_MAX_BYTES",
    "SOCKADDR_RETURN_BYTES",
    "submitSocket",
    "submitBind",
    "submitListen",
    "submitConnect",
    "submitAccept",
    "submitShutdown",
    "submitClose",
    "submitSetsockopt",
    "ringSetsockopt",
    "netSupport",
    "socketError",
  ],
  "./sync": [
    "tcpListen",
    "tcpConnect",
    "tcpAccept",
    "udpSocket",
    "openSocket",
    "bindSocket",
    "listenSocket",
    "connectSocket",
    "acceptSocket",
    "shutdownSocket",
    "closeSocket",
    "setSocketOption",
    "sendAll",
    "recvSome",
    "recvExact",
    "localAddress",
    "peerAddress",
    "closeQuietly",
    "RecvLoop",
  ],
  // bun-uring/abi is the kernel's numbers: its constants are the abi folder's, checked below; its
  // functions are pinned here.
  "./abi": ["cqeBufferId", "cqeHasBuffer", "cqeMore", "cqeNotif", "errnoName", "opcodeName", "opcodeSince"],
  "./testing": ["SimulatedZcrx", "SimulatedRecvZc", "POISON_BYTE", "assertClean"],
};

const sorted = (names: Iterable<string>): string[] => [...names].sort();
const specifier = (entry: string): string => (entry === "." ? pkg.name : `${pkg.name}/${entry.slice(2)}`);
/** An upper-case name: a kernel constant or struct layout (IORING_OP_SEND_ZC, IO_URING_SQE, _SC_PAGESIZE...). */
const KERNEL_NAME = /^_?[A-Z][A-Z0-9_]*$/;

describe("entry points", () => {
  test("package.json exports exactly the pinned entry points", () => {
    expect(sorted(Object.keys(pkg.exports))).toEqual(sorted(Object.keys(PINNED)));
  });

  for (const [entry, names] of Object.entries(PINNED)) {
    test(`${specifier(entry)}: exactly the pinned runtime names`, async () => {
      const m = (await import(specifier(entry))) as Record<string, unknown>;
      const exported = Object.keys(m).filter((n) => entry !== "./abi" || !KERNEL_NAME.test(n));
      expect(sorted(exported)).toEqual(sorted(new Set(names)));
      expect(names.length).toBe(new Set(names).size);
      for (const n of names) expect(m[n]).toBeDefined();
    });

    test(`${specifier(entry)}: the file opens with a module doc naming the entry point`, () => {
      const first = readFileSync(join(ROOT, pkg.exports[entry]!), "utf8").split("\n")[0]!;
      expect(first.startsWith(`// ${specifier(entry)}`)).toBe(true);
    });
  }

  test("bun-uring/abi holds the abi folder and nothing else", async () => {
    const abi = (await import(specifier("./abi"))) as Record<string, unknown>;
    const dir = join(ROOT, "src", "abi");
    const fromFolder = new Set<string>();
    for (const f of readdirSync(dir)) {
      if (f === "index.ts" || !f.endsWith(".ts")) continue;
      for (const n of Object.keys(await import(join(dir, f)))) fromFolder.add(n);
    }
    expect(sorted(Object.keys(abi))).toEqual(sorted(fromFolder));
    // Besides the pinned helpers, every name is a kernel constant or layout.
    const others = Object.keys(abi).filter((n) => !KERNEL_NAME.test(n));
    expect(sorted(others)).toEqual(sorted(PINNED["./abi"]!));
  });
});
