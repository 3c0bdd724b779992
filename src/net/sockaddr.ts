// struct sockaddr_in / sockaddr_in6 encoding and decoding. An address is parsed once into its
// wire bytes (`sockaddr()`); an operation then copies those 16 or 28 bytes into its scratch block,
// so nothing is parsed or allocated per operation. Ports and IPv4 addresses are big-endian on the
// wire (htons/htonl in C); the family and scope id are host order.
import { AF_INET, AF_INET6, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_STORAGE_SIZE } from "../abi/net.ts";
import { invalidArgument, shown } from "../error.ts";

/** A host and port. `host` is a numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "fe80::1%2") address:
 * no name resolution happens here. */
export interface SocketAddress {
  host: string;
  port: number;
}

/** A decoded address with its family (AF_INET or AF_INET6). */
export interface DecodedAddress extends SocketAddress {
  family: number;
  /** IPv6 scope id (interface index), 0 when none. */
  scopeId: number;
}

/** An address encoded once: `bytes` is the struct sockaddr the kernel reads, `length` its
 * socklen_t (16 for IPv4, 28 for IPv6). */
export interface Sockaddr {
  readonly family: number;
  readonly bytes: Uint8Array;
  readonly length: number;
  readonly host: string;
  readonly port: number;
}

/** Largest encoded sockaddr bun-uring writes (sockaddr_in6). */
export const SOCKADDR_MAX_BYTES = SOCKADDR_IN6.size;

/** `sa` as a Sockaddr the engine may copy into an SQE's scratch block, or an EINVAL naming `where`:
 * an object from `sockaddr()` (or built the same way) whose bytes hold a sockaddr_in (16) or
 * sockaddr_in6 (28) of the family it claims. A look-alike with other bytes or another length
 * would make the kernel read past the destination slot. */
export function checkSockaddr(where: string, sa: unknown): Sockaddr {
  const a = sa as Sockaddr;
  const ok =
    a !== null &&
    typeof a === "object" &&
    a.bytes instanceof Uint8Array &&
    ((a.family === AF_INET && a.length === SOCKADDR_IN.size) ||
      (a.family === AF_INET6 && a.length === SOCKADDR_IN6.size)) &&
    a.bytes.byteLength >= a.length &&
    (a.bytes[0]! | (a.bytes[1]! << 8)) === a.family;
  if (!ok)
    throw invalidArgument(
      where,
      `a destination must be { host, port } or a Sockaddr from sockaddr() (AF_INET with 16 bytes or AF_INET6 with 28), got ${shown(sa)}`,
    );
  return a;
}

function parsePort(where: string, port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw invalidArgument(where, `port must be an integer 0..65535, got ${shown(port)}`);
  return port;
}

/** The four bytes of a dotted-quad IPv4 address, or null when `s` is not one. */
export function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out.push(v);
  }
  return out;
}

/** The sixteen bytes of an IPv6 address (RFC 4291 text forms: "::" compression and a trailing
 * dotted quad), plus the numeric scope after "%", or null when `s` is not one. */
export function parseIPv6(s: string): { bytes: number[]; scopeId: number } | null {
  let scopeId = 0;
  const pct = s.indexOf("%");
  if (pct >= 0) {
    const scope = s.slice(pct + 1);
    if (!/^\d+$/.test(scope)) return null;
    scopeId = Number(scope);
    // sin6_scope_id is a u32: a larger number would wrap to another interface.
    if (scopeId > 0xffffffff) return null;
    s = s.slice(0, pct);
  }
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
      out.push(parseInt(item, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    all = head;
  }
  const bytes: number[] = [];
  for (const g of all) bytes.push(g >> 8, g & 0xff);
  return { bytes, scopeId };
}

/** Write `addr` as a struct sockaddr_in or sockaddr_in6 at `offset` of `view`; returns its length
 * (the socklen_t to pass). The bytes from `offset` to `offset + length` are overwritten whole. */
export function encodeSockaddr(view: DataView, offset: number, addr: SocketAddress): number {
  const port = parsePort("encodeSockaddr", addr.port);
  const v4 = parseIPv4(addr.host);
  if (v4) {
    if (offset < 0 || offset + SOCKADDR_IN.size > view.byteLength)
      throw invalidArgument("encodeSockaddr", `no room for ${SOCKADDR_IN.size} bytes at offset ${offset}`);
    for (let i = 0; i < SOCKADDR_IN.size; i++) view.setUint8(offset + i, 0);
    view.setUint16(offset + SOCKADDR_IN.family, AF_INET, true);
    view.setUint16(offset + SOCKADDR_IN.port, port, false);
    for (let i = 0; i < 4; i++) view.setUint8(offset + SOCKADDR_IN.addr + i, v4[i]!);
    return SOCKADDR_IN.size;
  }
  const v6 = parseIPv6(addr.host);
  if (!v6)
    throw invalidArgument(
      "encodeSockaddr",
      `host must be a numeric IPv4 or IPv6 address, got ${JSON.stringify(addr.host)}`,
    );
  if (offset < 0 || offset + SOCKADDR_IN6.size > view.byteLength)
    throw invalidArgument("encodeSockaddr", `no room for ${SOCKADDR_IN6.size} bytes at offset ${offset}`);
  for (let i = 0; i < SOCKADDR_IN6.size; i++) view.setUint8(offset + i, 0);
  view.setUint16(offset + SOCKADDR_IN6.family, AF_INET6, true);
  view.setUint16(offset + SOCKADDR_IN6.port, port, false);
  for (let i = 0; i < 16; i++) view.setUint8(offset + SOCKADDR_IN6.addr + i, v6.bytes[i]!);
  view.setUint32(offset + SOCKADDR_IN6.scope_id, v6.scopeId, true);
  return SOCKADDR_IN6.size;
}

function formatIPv6(view: DataView, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(view.getUint16(at + i * 2, false));
  // IPv4-mapped addresses keep the dotted quad (RFC 5952 section 5).
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  }
  // The longest run of two or more zero groups becomes "::" (RFC 5952 section 4.2).
  let bestAt = -1,
    bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

/** Read a struct sockaddr_in / sockaddr_in6 at `offset` of `view`. Throws for another family. */
export function decodeSockaddr(view: DataView, offset: number): DecodedAddress {
  const family = view.getUint16(offset, true);
  if (family === AF_INET) {
    const a = offset + SOCKADDR_IN.addr;
    const host = `${view.getUint8(a)}.${view.getUint8(a + 1)}.${view.getUint8(a + 2)}.${view.getUint8(a + 3)}`;
    return { family, host, port: view.getUint16(offset + SOCKADDR_IN.port, false), scopeId: 0 };
  }
  if (family === AF_INET6) {
    const scopeId = view.getUint32(offset + SOCKADDR_IN6.scope_id, true);
    const base = formatIPv6(view, offset + SOCKADDR_IN6.addr);
    return {
      family,
      host: scopeId ? `${base}%${scopeId}` : base,
      port: view.getUint16(offset + SOCKADDR_IN6.port, false),
      scopeId,
    };
  }
  throw invalidArgument(
    "decodeSockaddr",
    `address family ${family} is neither AF_INET (${AF_INET}) nor AF_INET6 (${AF_INET6})`,
  );
}

/** Encode an address once, for operations that copy it into their scratch block. */
export function sockaddr(addr: SocketAddress): Sockaddr {
  if (addr === null || typeof addr !== "object" || typeof addr.host !== "string")
    throw invalidArgument("sockaddr", "expected { host: string, port: number }");
  const bytes = new Uint8Array(SOCKADDR_MAX_BYTES);
  const length = encodeSockaddr(new DataView(bytes.buffer), 0, addr);
  const view = bytes.subarray(0, length);
  return {
    family: new DataView(bytes.buffer).getUint16(0, true),
    bytes: view,
    length,
    host: addr.host,
    port: addr.port,
  };
}

/** AF_INET or AF_INET6 for a numeric host (throws for anything else). */
export function familyOf(host: string): number {
  if (parseIPv4(host)) return AF_INET;
  if (parseIPv6(host)) return AF_INET6;
  throw invalidArgument("familyOf", `host must be a numeric IPv4 or IPv6 address, got ${JSON.stringify(host)}`);
}

/** "127.0.0.1:80" or "[::1]:80". */
export function formatAddress(a: SocketAddress): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Bytes to reserve for an address the kernel writes back (accept, getsockname). */
export const SOCKADDR_RETURN_BYTES = SOCKADDR_STORAGE_SIZE;
