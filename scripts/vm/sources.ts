// Reads the machine's own apt sources to learn the distribution archive's URI at run time.
// No archive host name is written in this project: whatever mirror the machine uses is reused,
// with the suite name swapped for the one we want (unstable, stable, oldstable).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
  file: string;
}

/** One-line format: `deb [opt=val ...] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const match = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const [, type, options = "", uri, suite, components = ""] = match;
    const signed = /(?:^|\s)signed-by=(\S+)/.exec(options)?.[1];
    out.push({
      types: [type!],
      uris: [uri!],
      suites: [suite!],
      components: components.split(/\s+/).filter(Boolean),
      signedBy: signed,
      file,
    });
  }
  return out;
}

/** deb822 format (*.sources): stanzas of `Field: value` separated by blank lines. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = parseDeb822Stanza(stanza);
    if (!fields.types || !fields.uris || !fields.suites) continue;
    if ((fields.enabled ?? "yes").toLowerCase() === "no") continue;
    out.push({
      types: fields.types.split(/\s+/),
      uris: fields.uris.split(/\s+/),
      suites: fields.suites.split(/\s+/),
      components: (fields.components ?? "").split(/\s+/).filter(Boolean),
      // An inline armored key cannot be named by path; apt's default keyrings then apply.
      signedBy: fields["signed-by"]?.startsWith("/") ? fields["signed-by"].split(/\s+/)[0] : undefined,
      file,
    });
  }
  return out;
}

function parseDeb822Stanza(stanza: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let last = "";
  for (const line of stanza.split("\n")) {
    if (line.startsWith("#")) continue;
    if (/^\s/.test(line) && last) {
      fields[last] += "\n" + line.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    fields[last] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** Every source entry the machine's apt would use. Files not ending in .list/.sources are ignored, as apt does. */
export function readHostSources(etcApt = "/etc/apt"): AptSource[] {
  const all: AptSource[] = [];
  const main = join(etcApt, "sources.list");
  if (existsSync(main)) all.push(...parseOneLineSources(readFileSync(main, "utf8"), main));
  const partsDir = join(etcApt, "sources.list.d");
  if (existsSync(partsDir)) {
    for (const name of readdirSync(partsDir).sort()) {
      const path = join(partsDir, name);
      if (name.endsWith(".list")) all.push(...parseOneLineSources(readFileSync(path, "utf8"), path));
      else if (name.endsWith(".sources")) all.push(...parseDeb822Sources(readFileSync(path, "utf8"), path));
    }
  }
  return all;
}

/** VERSION_CODENAME from os-release: the suite name the main archive entry is listed under. */
export function hostCodename(osRelease = "/etc/os-release"): string | undefined {
  if (!existsSync(osRelease)) return undefined;
  return /^VERSION_CODENAME=("?)([^"\n]*)\1$/m.exec(readFileSync(osRelease, "utf8"))?.[2];
}

export interface ArchiveChoice {
  uri: string;
  signedBy?: string;
  from: string;
}

const SUITE_ALIASES = ["unstable", "sid", "testing", "stable", "oldstable", "oldoldstable"];

/**
 * The distribution's main archive: a `deb` entry with component main whose suite is the plain
 * release (the host's codename or a suite alias), which rules out -security, -updates and
 * third-party repositories that carry their own suite names.
 */
export function pickArchive(sources: AptSource[], codename: string | undefined): ArchiveChoice | undefined {
  const plain = (suite: string) => suite === codename || SUITE_ALIASES.includes(suite);
  for (const source of sources) {
    if (!source.types.includes("deb") || !source.components.includes("main")) continue;
    if (!source.suites.some(plain)) continue;
    const uri = source.uris.find((u) => /^(https?|file):/.test(u));
    if (uri) return { uri: uri.replace(/\/+$/, ""), signedBy: source.signedBy, from: source.file };
  }
  return undefined;
}
