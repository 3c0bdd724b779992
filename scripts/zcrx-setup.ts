// bun scripts/zcrx-setup.ts -i IF -q RXQ [--port P] [--flow-type tcp6] [--dry-run] [--state FILE]
// bun scripts/zcrx-setup.ts -i IF --restore [--state FILE]
//
// Prepares rx queue RXQ of IF for zero-copy receive the way the kernel selftest iou-zcrx.py does,
// saving what it changes first so --restore can put it back: TCP header split on, hds-thresh 0,
// enough channels for RXQ, RSS spread over the queues below RXQ only (so RXQ gets only steered
// flows), n-tuple filters on, and, with --port, a flow rule sending that TCP port to RXQ.
import { existsSync, mkdirSync, readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { homedir } from "node:os";
import { choiceArg, numberArg, parseCli, portArg, runTool, usageExit } from "./lib/cli.ts";

const USAGE = `usage:
  bun scripts/zcrx-setup.ts -i IF -q RXQ [--port P] [--flow-type tcp6|tcp4] [--dry-run] [--state FILE]
  bun scripts/zcrx-setup.ts -i IF --restore [--dry-run] [--state FILE]

Applies the ethtool steps zero-copy receive needs on rx queue RXQ of IF (tcp-data-split on,
hds-thresh 0, channels, RSS away from RXQ, ntuple on, optional flow rule for TCP port P) after
saving the previous settings to the state file (default ~/.local/state/bun-uring/zcrx-setup-IF.json);
--restore undoes them from that file; RSS goes back to the default table, so the setup refuses to
touch an indirection table that is not the default one (it could not put that back).
--dry-run prints the commands without running them. -h, --help prints this text.`;

interface Args {
  ifname: string;
  rxq: number;
  port: number;
  flowType: string;
  dryRun: boolean;
  restore: boolean;
  state: string;
}

const CLI = { name: "zcrx-setup", usage: USAGE };

function parse(argv: string[]): Args {
  const { values: v } = parseCli(CLI, argv, {
    ifname: { type: "string", short: "i" },
    rxq: { type: "string", short: "q" },
    port: { type: "string", short: "p" },
    "flow-type": { type: "string" },
    "dry-run": { type: "boolean" },
    restore: { type: "boolean" },
    state: { type: "string" },
  });
  const a: Args = {
    ifname: v.ifname ?? "",
    rxq: v.rxq === undefined ? -1 : numberArg("--rxq", v.rxq, { max: 65535 }),
    port: v.port === undefined ? 0 : portArg("--port", v.port),
    flowType:
      v["flow-type"] === undefined ? "tcp6" : choiceArg("--flow-type", v["flow-type"], ["tcp4", "tcp6"] as const),
    dryRun: v["dry-run"] === true,
    restore: v.restore === true,
    state: v.state ?? "",
  };
  if (!/^[\w.:-]{1,15}$/.test(a.ifname)) die("-i IF is required (an interface name)");
  if (!a.restore && a.rxq < 0) die("-q RXQ is required (a queue index >= 0)");
  if (!a.state)
    a.state = join(
      process.env.XDG_STATE_HOME || join(homedir(), ".local", "state"),
      "bun-uring",
      `zcrx-setup-${a.ifname}.json`,
    );
  return a;
}

function die(msg: string): never {
  usageExit(CLI, msg);
}

const ETHTOOL = ["/usr/sbin/ethtool", "/sbin/ethtool", "/usr/bin/ethtool"].find((p) => existsSync(p));

function ethtool(args: string[]): { ok: boolean; out: string } {
  const p = Bun.spawnSync([ETHTOOL!, ...args], { stdout: "pipe", stderr: "pipe" });
  return { ok: p.exitCode === 0, out: p.stdout.toString() + p.stderr.toString() };
}

/** `key: value` of an ethtool report; `current` takes the "Current hardware settings" section. */
function field(out: string, key: string, current = true): string | undefined {
  const text =
    current && out.includes("Current hardware settings") ? out.slice(out.indexOf("Current hardware settings")) : out;
  const m = new RegExp(`^\\s*${key}:\\s*(.+)$`, "mi").exec(text);
  return m?.[1]?.trim();
}

interface Saved {
  ifname: string;
  rxq: number;
  tcp_data_split: string | undefined;
  hds_thresh: string | undefined;
  combined: string | undefined;
  ntuple: string | undefined;
  rules_added: number[];
  rss_changed: boolean;
  saved_at: string;
}

function readState(a: Args): Saved {
  return {
    ifname: a.ifname,
    rxq: a.rxq,
    tcp_data_split: field(ethtool(["-g", a.ifname]).out, "TCP data split"),
    hds_thresh: field(ethtool(["-g", a.ifname]).out, "HDS thresh"),
    combined: field(ethtool(["-l", a.ifname]).out, "Combined"),
    ntuple: field(ethtool(["-k", a.ifname]).out, "ntuple-filters", false)?.split(" ")[0],
    rules_added: [],
    rss_changed: false,
    saved_at: new Date().toISOString(),
  };
}

/** Whether the RSS indirection table (`ethtool -x`) is the driver's default, entry i on queue
 * i mod N: "unknown" when the report has no table. */
function rssTable(ifname: string): "default" | "custom" | "unknown" {
  const out = ethtool(["-x", ifname]).out;
  const rings = Number(/with (\d+) RX ring/i.exec(out)?.[1] ?? NaN);
  const entries: number[] = [];
  for (const m of out.matchAll(/^\s*\d+:((?:\s+\d+)+)\s*$/gm))
    for (const v of m[1]!.trim().split(/\s+/)) entries.push(Number(v));
  if (!(rings > 0) || entries.length === 0) return "unknown";
  return entries.every((q, i) => q === i % rings) ? "default" : "custom";
}

/** Run one ethtool step (or print it with --dry-run); a failure stops with what to look at. */
function step(a: Args, args: string[], why: string): string {
  console.log(`${a.dryRun ? "would run" : "run"}: ethtool ${args.join(" ")}   # ${why}`);
  if (a.dryRun) return "";
  const r = ethtool(args);
  if (!r.ok) {
    console.error(
      `ethtool ${args.join(" ")} failed:\n${r.out.trim()}\n(the state file ${a.state} has what was changed so far: run --restore)`,
    );
    process.exit(1);
  }
  return r.out;
}

function apply(a: Args): void {
  if (existsSync(a.state) && !a.dryRun)
    die(`${a.state} exists: a previous setup was not restored (run --restore first, or pass --state)`);
  if (a.rxq > 0 && rssTable(a.ifname) === "custom") {
    console.error(
      `${a.ifname} has its own RSS indirection table: this setup would replace it with one that keeps queue ${a.rxq} out of RSS, and --restore could only reset it to the default. Save it and steer queue ${a.rxq} out of RSS yourself (ethtool -X), or reset it first (ethtool -X ${a.ifname} default).`,
    );
    process.exit(1);
  }
  const saved = readState(a);
  console.log(
    `saved state: tcp-data-split ${saved.tcp_data_split ?? "?"}, hds-thresh ${saved.hds_thresh ?? "?"}, combined ${saved.combined ?? "?"}, ntuple ${saved.ntuple ?? "?"}`,
  );
  const persist = () => {
    if (a.dryRun) return;
    mkdirSync(dirname(a.state), { recursive: true });
    writeFileSync(a.state, JSON.stringify(saved, null, 2) + "\n");
  };
  persist();
  if (saved.tcp_data_split === "n/a" || saved.tcp_data_split === undefined) {
    console.error(
      `${a.ifname} does not support TCP header split (ethtool -g reports "${saved.tcp_data_split ?? "nothing"}"): zero-copy receive cannot work on it`,
    );
    if (!a.dryRun) unlinkSync(a.state);
    process.exit(1);
  }
  step(a, ["-G", a.ifname, "tcp-data-split", "on"], "payload in separate buffers, headers in the kernel's");
  // Drivers without the setting (gve among them) report "n/a", and setting it fails.
  if (saved.hds_thresh !== undefined && /^\d+$/.test(saved.hds_thresh) && saved.hds_thresh !== "0")
    step(a, ["-G", a.ifname, "hds-thresh", "0"], "split every packet, however small");
  const combined = Number(saved.combined ?? 0);
  if (combined <= a.rxq) step(a, ["-L", a.ifname, "combined", String(a.rxq + 1)], `queue ${a.rxq} must exist`);
  if (a.rxq > 0) {
    step(
      a,
      ["-X", a.ifname, "equal", String(a.rxq)],
      `RSS over queues 0..${a.rxq - 1} only: queue ${a.rxq} gets steered flows alone`,
    );
    saved.rss_changed = true;
    persist();
  }
  if (saved.ntuple !== "on") step(a, ["-K", a.ifname, "ntuple", "on"], "allow flow steering rules");
  if (a.port > 0) {
    const out = step(
      a,
      ["-N", a.ifname, "flow-type", a.flowType, "dst-port", String(a.port), "action", String(a.rxq)],
      `TCP port ${a.port} to queue ${a.rxq}`,
    );
    const id = /rule with ID (\d+)/i.exec(out)?.[1];
    if (id) {
      saved.rules_added.push(Number(id));
      persist();
    }
  }
  console.log(
    a.dryRun
      ? "dry run: nothing changed"
      : `done; undo with: bun scripts/zcrx-setup.ts -i ${a.ifname} --restore${a.state.includes("zcrx-setup-") ? "" : ` --state ${a.state}`}`,
  );
}

function restore(a: Args): void {
  if (!existsSync(a.state)) die(`no saved state at ${a.state}`);
  const s = JSON.parse(readFileSync(a.state, "utf8")) as Saved;
  if (s.ifname !== a.ifname) die(`${a.state} is for ${s.ifname}, not ${a.ifname}`);
  for (const id of s.rules_added) step(a, ["-N", a.ifname, "delete", String(id)], "remove the flow rule we added");
  if (s.rss_changed) step(a, ["-X", a.ifname, "default"], "RSS over all queues again");
  if (s.ntuple && s.ntuple !== "on") step(a, ["-K", a.ifname, "ntuple", s.ntuple], "n-tuple filters as before");
  if (s.combined && /^\d+$/.test(s.combined) && Number(s.combined) <= s.rxq)
    step(a, ["-L", a.ifname, "combined", s.combined], "channels as before");
  if (s.hds_thresh && /^\d+$/.test(s.hds_thresh) && s.hds_thresh !== "0")
    step(a, ["-G", a.ifname, "hds-thresh", s.hds_thresh], "hds-thresh as before");
  if (s.tcp_data_split && ["off", "auto"].includes(s.tcp_data_split))
    step(a, ["-G", a.ifname, "tcp-data-split", s.tcp_data_split], "header split as before");
  if (!a.dryRun) unlinkSync(a.state);
  console.log(a.dryRun ? "dry run: nothing changed" : `restored ${a.ifname} (saved ${s.saved_at})`);
}

let args!: Args;
await runTool(CLI, () => {
  args = parse(process.argv.slice(2));
});
if (!ETHTOOL) {
  console.error("ethtool is not installed: apt-get install ethtool");
  process.exit(1);
}
if (!existsSync(`/sys/class/net/${args.ifname}`)) die(`no interface ${args.ifname} (see ip -br link)`);
if (args.restore) restore(args);
else apply(args);
