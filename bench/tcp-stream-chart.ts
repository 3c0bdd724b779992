// The chart of bench/tcp-stream.ts as a hand-written SVG: throughput against payload size (log2
// axis), one line per sender and mode. No dependencies. Run directly to redraw from a results file:
//   bun bench/tcp-stream-chart.ts bench/results/tcp-stream-<date>.json [docs/tcp-stream.svg]
import { readFileSync, writeFileSync } from "node:fs";

export interface ChartRow {
  size: number;
  sender: string;
  mode: string;
  mib_s: number;
}

const W = 860,
  H = 520;
const M = { left: 70, right: 230, top: 50, bottom: 60 };
const PALETTE: Record<string, string[]> = {
  "bun-uring": ["#1f77b4", "#2ca02c", "#17becf", "#9467bd", "#d62728"],
  "c-liburing": ["#7f7f7f", "#555555", "#aaaaaa"],
  "bun-net": ["#ff7f0e"],
  "node-net": ["#8c564b"],
};

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A "nice" axis maximum and step for values up to `max`. */
function niceAxis(max: number): { top: number; step: number } {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step || step, step };
}

export function renderChart(
  rows: readonly ChartRow[],
  meta: { kernel?: string; rounds?: number; seconds?: number; batch?: number } = {},
): string {
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  const series = [...new Set(rows.map((r) => `${r.sender} ${r.mode}`))];
  const maxY = Math.max(1, ...rows.map((r) => (Number.isFinite(r.mib_s) ? r.mib_s : 0)));
  const { top, step } = niceAxis(maxY);
  const pw = W - M.left - M.right,
    ph = H - M.top - M.bottom;
  const lx = (s: number) => Math.log2(s);
  const x0 = lx(sizes[0] ?? 1024),
    x1 = lx(sizes[sizes.length - 1] ?? 262144);
  const X = (s: number) => M.left + (x1 === x0 ? pw / 2 : ((lx(s) - x0) / (x1 - x0)) * pw);
  const Y = (v: number) => M.top + ph - (v / top) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(
    `<text x="${M.left}" y="24" font-size="16" font-weight="bold">TCP stream over loopback: sender throughput by payload size</text>`,
  );
  const sub = `medians of ${meta.rounds ?? "?"} rounds × ${meta.seconds ?? "?"} s, batch ${meta.batch ?? "?"}, TCP_NODELAY, one copying C receiver per sender, kernel ${meta.kernel ?? "?"}`;
  out.push(`<text x="${M.left}" y="40" fill="#555">${esc(sub)}</text>`);
  for (let v = 0; v <= top + 1e-9; v += step) {
    const y = Y(v);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${y + 4}" text-anchor="end">${v}</text>`);
  }
  for (const s of sizes) {
    const x = X(s);
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" stroke="#f0f0f0"/>`);
    out.push(
      `<text x="${x}" y="${M.top + ph + 18}" text-anchor="middle">${s >= 1024 ? `${s / 1024} KiB` : `${s} B`}</text>`,
    );
  }
  out.push(`<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 18}" text-anchor="middle">payload per send (log scale)</text>`);
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">MiB/s</text>`);
  const used: Record<string, number> = {};
  series.forEach((name, i) => {
    const [sender, mode] = name.split(" ");
    const k = used[sender!] ?? 0;
    used[sender!] = k + 1;
    const colors = PALETTE[sender!] ?? ["#000"];
    const color = colors[k % colors.length]!;
    const dash =
      sender === "c-liburing"
        ? ` stroke-dasharray="6 4"`
        : sender === "node-net" || sender === "bun-net"
          ? ` stroke-dasharray="2 3"`
          : "";
    const pts = sizes
      .map((s) => rows.find((r) => r.size === s && `${r.sender} ${r.mode}` === name))
      .filter((r): r is ChartRow => r !== undefined && Number.isFinite(r.mib_s))
      .map((r) => `${X(r.size).toFixed(1)},${Y(r.mib_s).toFixed(1)}`);
    if (pts.length)
      out.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    for (const p of pts) {
      const [px, py] = p.split(",");
      out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
    }
    const ly = M.top + 10 + i * 20;
    out.push(
      `<line x1="${M.left + pw + 20}" y1="${ly}" x2="${M.left + pw + 50}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
    );
    out.push(`<text x="${M.left + pw + 56}" y="${ly + 4}">${esc(`${sender} ${mode}`)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  const [input, output = "docs/tcp-stream.svg"] = process.argv.slice(2);
  const usage =
    "usage: bun bench/tcp-stream-chart.ts bench/results/tcp-stream-<date>.json [out.svg]\n" +
    "Redraws the throughput chart (one line per sender and mode) from a recorded tcp-stream run.";
  if (input === "--help" || input === "-h") {
    console.log(usage);
    process.exit(0);
  }
  if (!input) {
    console.error(usage);
    process.exit(2);
  }
  const j = JSON.parse(readFileSync(input, "utf8"));
  writeFileSync(output, renderChart(j.rows, j));
  console.log(`wrote ${output}`);
}
