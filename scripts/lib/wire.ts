// What goes on the wire between our lab tools and liburing's examples/send-zerocopy.c (read in
// Debian's liburing 2.15 source): its payload pattern, default payload size and port, so each
// side can be replaced by the other and the receiver still checks the bytes.
import { readlinkSync, readFileSync } from "node:fs";

/** send-zerocopy.c's PATTERN_SIZE: payload byte i is 'a' + i % 26. */
export const PATTERN_PERIOD = 26;
const LOWER_A = 0x61;

/** send-zerocopy.c's default payload (-s): IP_MAXPACKET (65535) minus an IPv6 header (40), a TCP
 * header (20) and 40 bytes of TCP options. It uses it for TCP and UDP alike. */
export const LIBURING_PAYLOAD = 65535 - 40 - 20 - 40;

/** Largest UDP payload over IPv4 / IPv6 (65535 minus the IP and UDP headers). */
export const UDP_MAX_IPV4 = 65507;
export const UDP_MAX_IPV6 = 65527;

/** Fill `buf` with the pattern as if it started at stream offset `offset`. */
export function fillPattern(buf: Uint8Array, offset = 0): Uint8Array {
  for (let i = 0; i < buf.length; i++) buf[i] = LOWER_A + ((offset + i) % PATTERN_PERIOD);
  return buf;
}

/** Checks received bytes against the pattern without a per-byte loop in JavaScript: one
 * reference buffer `maxChunk + 26` long, compared natively (memcmp) at the right phase. */
export class PatternChecker {
  private readonly reference: Buffer;

  constructor(maxChunk: number) {
    this.reference = Buffer.from(fillPattern(new Uint8Array(maxChunk + PATTERN_PERIOD)).buffer);
  }

  /** True when `bytes` equal the pattern starting at stream offset `offset` (0 for a datagram:
   * send-zerocopy.c sends every datagram from the start of its payload). */
  matches(bytes: Uint8Array, offset: number): boolean {
    if (bytes.length > this.reference.length - PATTERN_PERIOD)
      throw new RangeError(
        `chunk of ${bytes.length} bytes is larger than the checker's ${this.reference.length - PATTERN_PERIOD}`,
      );
    const phase = offset % PATTERN_PERIOD;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(
      this.reference.subarray(phase, phase + bytes.length),
    );
  }
}

/** The kernel's drop count for a UDP socket we own (sk_drops, the last column of /proc/net/udp
 * and udp6), found by the socket's inode; null when the line is not found. */
export function udpDrops(fd: number): number | null {
  const link = readlinkSync(`/proc/self/fd/${fd}`);
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (!inode) return null;
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      if (f[9] === inode) return Number(f[12]);
    }
  }
  return null;
}
