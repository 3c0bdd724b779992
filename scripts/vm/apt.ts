// A private apt for one suite: its own sources list, lists, status and cache under our cache
// directory, so `update` and `download` never touch the machine's own apt state. The machine's
// apt.conf still applies (proxies, timeouts), which is what lets this work where apt works.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDir } from "./cache.ts";
import { hostCodename, pickArchive, readHostSources } from "./sources.ts";
import { run, runChecked } from "./proc.ts";

export interface PrivateApt {
  suite: string;
  dir: string;
  /** `-o` flags selecting the private configuration; prepend to every apt-get / apt-cache call. */
  options: string[];
}

/** The archive line for `suite`, built from the host's sources or BUN_URING_VM_MIRROR. */
export function archiveLine(suite: string, env = process.env): string {
  const mirror = env.BUN_URING_VM_MIRROR;
  const choice = mirror ? { uri: mirror, signedBy: undefined } : pickArchive(readHostSources(), hostCodename());
  if (!choice) {
    throw new Error(
      "no distribution archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/ " +
        "(need a `deb` entry with component main for this release); set BUN_URING_VM_MIRROR to the archive URI",
    );
  }
  const signed = choice.signedBy ? `[signed-by=${choice.signedBy}] ` : "";
  return `deb ${signed}${choice.uri} ${suite} main\n`;
}

/** Creates (or reuses) the private apt tree for a suite. */
export function privateApt(cacheDir: string, suite: string, sourcesLine: string): PrivateApt {
  const dir = ensureDir(join(cacheDir, "apt", suite));
  const empty = ensureDir(join(dir, "etc", "empty"));
  ensureDir(join(dir, "state", "lists", "partial"));
  ensureDir(join(dir, "cache", "archives", "partial"));
  const sourceList = join(dir, "etc", "sources.list");
  writeFileSync(sourceList, sourcesLine);
  const status = join(dir, "state", "status");
  if (!existsSync(status)) writeFileSync(status, "");
  const options = [
    `Dir::Etc::SourceList=${sourceList}`,
    `Dir::Etc::SourceParts=${empty}`,
    // The host's pins are about the host's suites; they must not steer what we resolve here.
    `Dir::Etc::Preferences=${join(empty, "preferences")}`,
    `Dir::Etc::PreferencesParts=${empty}`,
    `Dir::State=${join(dir, "state")}`,
    `Dir::State::Lists=${join(dir, "state", "lists")}`,
    // An empty dpkg status: resolution must not depend on what the host has installed.
    `Dir::State::status=${status}`,
    `Dir::Cache=${join(dir, "cache")}`,
    // A binary package cache saves ~1 s per apt-cache call over re-parsing the lists (the host's
    // apt.conf may disable it, as Debian's container images do); the source cache is not needed.
    `Dir::Cache::pkgcache=${join(dir, "cache", "pkgcache.bin")}`,
    "Dir::Cache::srcpkgcache=",
    "Acquire::Languages=none",
    "Acquire::Retries=1",
    "Acquire::http::Timeout=30",
    // As root, apt drops to _apt for downloads, and _apt cannot write into our cache directory.
    ...(process.getuid?.() === 0 ? ["APT::Sandbox::User=root"] : []),
  ].flatMap((o) => ["-o", o]);
  return { suite, dir, options };
}

/** apt-get update on the private lists; false (not a throw) when the archive can't be reached. */
export async function aptUpdate(apt: PrivateApt, deadline?: number): Promise<{ ok: boolean; detail: string }> {
  const result = await run(["apt-get", ...apt.options, "-q", "update"], { deadline });
  const failed = result.code !== 0 || /^(E:|Err:|W: Failed to fetch)/m.test(result.stdout + result.stderr);
  return { ok: !failed && !result.timedOut, detail: (result.stderr || result.stdout).trim() };
}

/** True when a previous update left package lists behind (usable offline). */
export function hasLists(apt: PrivateApt): boolean {
  const lists = join(apt.dir, "state", "lists");
  return existsSync(lists) && [...new Bun.Glob("*_Packages*").scanSync(lists)].length > 0;
}

export interface PackageInfo {
  package: string;
  version: string;
  depends: string[];
}

/** `apt-cache show` of the candidate version; undefined if the suite has no such package. */
export async function showPackage(apt: PrivateApt, name: string, deadline?: number): Promise<PackageInfo | undefined> {
  const result = await run(["apt-cache", ...apt.options, "show", "--no-all-versions", name], { deadline });
  if (result.code !== 0 || !result.stdout.trim()) return undefined;
  const field = (key: string) => new RegExp(`^${key}: (.*)$`, "m").exec(result.stdout)?.[1] ?? "";
  return { package: field("Package"), version: field("Version"), depends: parseDepends(field("Depends")) };
}

/** Package names from a Depends field, alternatives flattened, version constraints dropped. */
export function parseDepends(field: string): string[] {
  return field
    .split(/[,|]/)
    .map((dep) => dep.trim().split(/[\s(:]/)[0]!)
    .filter(Boolean);
}

/** apt-get download into `into`; returns the .deb paths apt wrote. */
export async function aptDownload(
  apt: PrivateApt,
  names: string[],
  into: string,
  deadline?: number,
): Promise<string[]> {
  ensureDir(into);
  await runChecked(["apt-get", ...apt.options, "-q", "download", ...names], { cwd: into, deadline });
  return names.map((name) => {
    const match = [...new Bun.Glob(`${name}_*.deb`).scanSync(into)].sort().pop();
    if (!match) throw new Error(`apt-get download ${name} left no .deb in ${into}`);
    return join(into, match);
  });
}
