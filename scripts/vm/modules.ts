// Picking kernel modules (and what they depend on) for the guest.
//
// Debian builds modules.dep only at install time, so the extracted package has no dependency
// index: dependencies are read here from each module's .modinfo section ("depends=a,b").
// Modules are shipped plain (6.1), or xz-compressed (6.12 with CONFIG_MODULE_DECOMPRESS, 7.x
// whose packages carry no config to tell). busybox insmod passes the file to init_module as is,
// so compressed modules are unpacked on the host and the guest always gets plain .ko files.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";

export interface GuestModule {
  name: string;
  /** Path below lib/modules/<release>/, with the compression suffix removed. */
  path: string;
  depends: string[];
  data: Uint8Array;
}

const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;

/** Module names as the kernel knows them: dashes and underscores are the same. */
export function moduleName(file: string): string {
  return file.split("/").pop()!.replace(MODULE_FILE, "").replaceAll("-", "_");
}

/** name → absolute path of every module file under a modules directory. */
export function indexModules(modulesDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (MODULE_FILE.test(entry.name)) index.set(moduleName(entry.name), path);
    }
  };
  walk(modulesDir);
  return index;
}

/** The module file's bytes, uncompressed with the host's xz / zstd / gzip. */
export async function readModule(path: string): Promise<Uint8Array> {
  if (path.endsWith(".ko")) return new Uint8Array(await Bun.file(path).arrayBuffer());
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : "gzip";
  const child = Bun.spawn([tool, "-dc", path], { stdout: "pipe", stderr: "pipe" });
  const [bytes, code] = await Promise.all([new Response(child.stdout).bytes(), child.exited]);
  if (code !== 0) throw new Error(`${tool} -dc ${path} exited with ${code}`);
  return bytes;
}

/** Fields of the ELF .modinfo section ("key=value\0" strings). */
export function readModinfo(elf: Uint8Array): Map<string, string[]> {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (view.getUint32(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error("not an ELF64 object");
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: view.getUint32(at, true),
      offset: Number(view.getBigUint64(at + 0x18, true)),
      size: Number(view.getBigUint64(at + 0x20, true)),
    };
  };
  const strtab = section(shstrndx);
  const decoder = new TextDecoder();
  const cString = (start: number) => decoder.decode(elf.subarray(start, elf.indexOf(0, start)));
  const fields = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (cString(strtab.offset + s.name) !== ".modinfo") continue;
    for (const entry of decoder.decode(elf.subarray(s.offset, s.offset + s.size)).split("\0")) {
      const eq = entry.indexOf("=");
      if (eq <= 0) continue;
      const key = entry.slice(0, eq);
      fields.set(key, [...(fields.get(key) ?? []), entry.slice(eq + 1)]);
    }
  }
  return fields;
}

export interface ModuleSelection {
  /** In load order: every module after all of its dependencies. */
  modules: GuestModule[];
  /** Requested names with no module file: built into this kernel, or not built at all. */
  missing: string[];
}

/** Resolves the requested modules and their dependency closure, ordered for insmod. */
export async function selectModules(modulesDir: string, wanted: string[]): Promise<ModuleSelection> {
  const index = indexModules(modulesDir);
  const ordered: GuestModule[] = [];
  const visited = new Set<string>();
  const missing: string[] = [];
  const visit = async (name: string, requested: boolean) => {
    if (visited.has(name)) return;
    visited.add(name);
    const file = index.get(name);
    if (!file) {
      if (requested) missing.push(name);
      else throw new Error(`module dependency ${name} not found under ${modulesDir}`);
      return;
    }
    const data = await readModule(file);
    const depends = (readModinfo(data).get("depends")?.[0] ?? "").split(",").filter(Boolean).map(moduleName);
    for (const dep of depends) await visit(dep, false);
    const path = relative(modulesDir, file).replace(/\.(xz|zst|gz)$/, "");
    ordered.push({ name, path, depends, data });
  };
  for (const name of wanted) await visit(moduleName(name), true);
  return { modules: ordered, missing };
}

/** modules.dep for the selected modules, so `modprobe` in the guest works for them too. */
export function modulesDep(selection: ModuleSelection): string {
  const byName = new Map(selection.modules.map((m) => [m.name, m]));
  const closure = (m: GuestModule, seen = new Set<string>()): string[] =>
    m.depends.flatMap((d) => {
      if (seen.has(d)) return [];
      seen.add(d);
      const dep = byName.get(d)!;
      return [dep.path, ...closure(dep, seen)];
    });
  return selection.modules.map((m) => `${m.path}: ${closure(m).join(" ")}`.trimEnd() + "\n").join("");
}
