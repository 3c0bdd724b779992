// A cpio "newc" writer, which is the format the kernel unpacks as initramfs. Written here
// because the cpio tool is not installed everywhere and device nodes (/dev/console) can be
// recorded in an archive without being root.
//
// The kernel does not create missing parent directories while unpacking, so the writer emits
// each parent directory once before the first entry inside it.

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const encoder = new TextEncoder();

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

export class CpioWriter {
  private chunks: Uint8Array[] = [];
  private dirs = new Set<string>();
  private names = new Set<string>();
  private ino = 1;
  private mtime = Math.floor(Date.now() / 1000);

  /** A directory (and its parents). */
  dir(path: string, mode = 0o755): void {
    const clean = normalize(path);
    if (!clean || this.dirs.has(clean)) return;
    this.parents(clean);
    this.dirs.add(clean);
    this.entry(clean, S_IFDIR | mode, new Uint8Array(0));
  }

  file(path: string, data: Uint8Array | string, mode = 0o644): void {
    const clean = normalize(path);
    this.parents(clean);
    this.entry(clean, S_IFREG | mode, typeof data === "string" ? encoder.encode(data) : data);
  }

  symlink(path: string, target: string): void {
    const clean = normalize(path);
    this.parents(clean);
    // Recorded as a directory too: entries below a symlinked directory must not re-create it.
    this.dirs.add(clean);
    this.entry(clean, S_IFLNK | 0o777, encoder.encode(target));
  }

  charDevice(path: string, major: number, minor: number, mode = 0o600): void {
    const clean = normalize(path);
    this.parents(clean);
    this.entry(clean, S_IFCHR | mode, new Uint8Array(0), major, minor);
  }

  /** Whether a file, symlink or device is already recorded at this path. */
  has(path: string): boolean {
    return this.names.has(normalize(path));
  }

  /** The archive with its TRAILER!!! entry; the writer is finished after this. */
  finish(): Uint8Array[] {
    this.entry("TRAILER!!!", 0, new Uint8Array(0), 0, 0, 0);
    return this.chunks;
  }

  private parents(path: string): void {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) this.dir(parts.slice(0, i).join("/"));
  }

  private entry(name: string, mode: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0, ino = this.ino++): void {
    if ((mode & S_IFMT) !== S_IFDIR) this.names.add(name);
    const nameBytes = encoder.encode(name + "\0");
    const header =
      "070701" +
      [ino, mode, 0, 0, 1, this.mtime, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0].map(hex8).join("");
    this.chunks.push(encoder.encode(header), nameBytes, new Uint8Array(pad4(110 + nameBytes.length)));
    if (data.length) this.chunks.push(data, new Uint8Array(pad4(data.length)));
  }
}

function normalize(path: string): string {
  return path.replace(/^\/+/, "").replace(/\/+$/, "");
}
