/**
 * `deno task sim`: runs congestion-control flows on real stack instances over the simulated
 * dumbbell in virtual time and reports goodput, RTT, cwnd, queue delay, drops, marks and
 * fairness (table on stdout, optional JSON and SVG). See sim/README.md.
 *
 * @module
 */

import {
  CcSelectionError,
  defaultParams,
  type ExperimentParams,
  ExperimentParamsError,
  parseFlows,
  runExperiment,
} from "./experiment.ts";
import { ChannelParamsError } from "./channel.ts";
import { formatTable, renderSvg, toJson } from "./report.ts";
import { parseCount, parseDuration, parseFraction, parseRate, UnitParseError } from "./units.ts";
import { monotonicNow, SECOND } from "../stacks/time.ts";
import { dirname } from "node:path";

/** Usage text of `--help`. */
export const USAGE = `deno task sim [flags]

Runs one bulk TCP flow per --flows entry (real Interface + TcpStack hosts, bytes verified end
to end) through a dumbbell whose bottleneck has the given rate, delay and buffer, for a fixed
virtual time. Same flags and seed => same results, byte for byte.

  --rate 100mbit        bottleneck rate (kbit, mbit, gbit; bps; a bare number is bit/s)
  --rtt 20ms            base round-trip propagation delay (ns, us, ms, s); a list gives
                        one per flow (--flows reno,reno --rtt 20ms,80ms)
  --queue 100           bottleneck buffer, packets
  --loss 0.5%           random loss on the bottleneck, data direction (also 0.005)
  --reorder 1%          data frames held back by --reorder-delay (later ones overtake)
  --reorder-delay 1ms   extra delay of a reordered frame
  --duplicate 1%        data frames delivered twice
  --corrupt 1%          data frames with one flipped bit (checksums must catch it)
  --ecn-k 20            mark CE when more than K packets wait (default: no marking)
  --flows reno          comma-separated, one flow each: a name (reno, cubic, dctcp, bbr,
                        aimd, ...: built-in or cc/dist/<name>.wasm), a path to a .wasm
                        module, or Nx<name> for N flows (e.g. 2xcubic,bbr)
  --stagger 0s          flow i starts at i x stagger (goodput counts from its start)
  --pacing              every host paces at cwnd/SRTT when its algorithm sets no rate
                        (Linux fq-like; algorithms with a pacing rate are paced anyway)
  --duration 30s        virtual time to simulate
  --seed 1              root seed of every random choice
  --interval 100ms      sampling interval of the time series (default: ~200 samples)
  --json FILE           write the result as JSON (- for stdout; the table then goes to stderr)
  --plot FILE.svg       write throughput, cwnd and queue over time as an SVG chart
  --help                this text

Example: deno task sim --rate 50mbit --rtt 40ms --flows cubic,bbr --duration 20s --plot out.svg
`;

/** An unknown flag or a flag without its value; the message says what to do. */
export class CliUsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(`${message}; run deno task sim --help for the flags`);
    this.name = "CliUsageError";
  }
}

/** What the command line asks for. */
export interface CliOptions {
  /** The experiment. */
  params: ExperimentParams;
  /** JSON output file, "-" for stdout, or null. */
  json: string | null;
  /** SVG output file, or null. */
  plot: string | null;
  /** `--help` was given. */
  help: boolean;
}

type Setter = (o: CliOptions, flag: string, value: string) => void;

/** Flags without a value (`--pacing`; `--pacing=off` also accepted). */
const SWITCHES: Record<string, (o: CliOptions, on: boolean) => void> = {
  pacing: (o, on) => o.params.tcp = { ...o.params.tcp, pacing: on },
};

const FLAGS: Record<string, Setter> = {
  rate: (o, f, v) => o.params.rateBps = parseRate(f, v),
  rtt: (o, f, v) => {
    const list = v.split(",").map((x) => parseDuration(f, x));
    o.params.rtt = Math.min(...list);
    o.params.flowRtts = list.length > 1 ? list : [];
  },
  queue: (o, f, v) => {
    const n = parseCount(f, v);
    if (n < 1) throw new UnitParseError(f, v, "100 (at least 1 packet)");
    o.params.queuePackets = n;
  },
  loss: (o, f, v) => o.params.loss = parseFraction(f, v),
  reorder: (o, f, v) => o.params.reorder = parseFraction(f, v),
  "reorder-delay": (o, f, v) => o.params.reorderDelay = parseDuration(f, v),
  duplicate: (o, f, v) => o.params.duplicate = parseFraction(f, v),
  corrupt: (o, f, v) => o.params.corrupt = parseFraction(f, v),
  "ecn-k": (o, f, v) => o.params.ecnK = v === "off" ? null : parseCount(f, v),
  flows: (o, _f, v) => o.params.flows = parseFlows(v),
  duration: (o, f, v) => {
    const d = parseDuration(f, v);
    if (!(d > 0)) throw new UnitParseError(f, v, "30s (more than zero)");
    o.params.duration = d;
  },
  seed: (o, f, v) => {
    const s = parseCount(f, v);
    if (s > 0xffffffff) throw new UnitParseError(f, v, "a whole number below 2^32, e.g. 7");
    o.params.seed = s;
  },
  interval: (o, f, v) => {
    const d = parseDuration(f, v);
    if (!(d > 0)) throw new UnitParseError(f, v, "100ms (more than zero)");
    o.params.interval = d;
  },
  stagger: (o, f, v) => o.params.stagger = parseDuration(f, v),
  json: (o, _f, v) => o.json = v,
  plot: (o, _f, v) => o.plot = v,
};

/**
 * Parses the command line (`--flag value` or `--flag=value`). Throws `UnitParseError` for a
 * value that does not parse and `CliUsageError` for an unknown flag or a missing value.
 */
export function parseArgs(args: readonly string[]): CliOptions {
  const o: CliOptions = { params: defaultParams(), json: null, plot: null, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      o.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new CliUsageError(`unexpected argument ${JSON.stringify(arg)}`);
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const sw = Object.hasOwn(SWITCHES, name) ? SWITCHES[name] : undefined;
    if (sw !== undefined) {
      const v = eq < 0 ? "on" : arg.slice(eq + 1);
      if (!["on", "off", "true", "false"].includes(v)) {
        throw new UnitParseError(name, v, `--${name} or --${name}=off`);
      }
      sw(o, v === "on" || v === "true");
      continue;
    }
    const set = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    if (set === undefined) throw new CliUsageError(`unknown flag --${name}`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new CliUsageError(`--${name} needs a value`);
      }
      value = next;
      i++;
    }
    set(o, name, value);
  }
  return o;
}

/** Writes all of `data` (a pipe may take it in pieces). */
async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  for (let off = 0; off < data.length;) off += await w.write(data.subarray(off));
}

/** Runs the command; returns the exit status (0 ok, 1 a flow failed verification, 2 usage). */
export async function main(args: readonly string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = parseArgs(args);
  } catch (e) {
    if (e instanceof UnitParseError || e instanceof CliUsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  // Refuse a bad output path before a long run rather than after it.
  for (const [flag, path] of [["json", o.json], ["plot", o.plot]] as const) {
    if (path === null || path === "-") continue;
    const dir = dirname(path);
    let ok = false;
    try {
      ok = Deno.statSync(dir).isDirectory;
    } catch {
      ok = false;
    }
    if (!ok) {
      console.error(
        `error: --${flag} ${path}: no directory ${dir}; create it or pick another path`,
      );
      return 2;
    }
  }
  let result;
  const started = monotonicNow();
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const progress = (now: number, duration: number): void => {
    if (!tty) return;
    const line = `\r  simulating: ${(now / SECOND).toFixed(0)} / ${duration / SECOND} s virtual, ` +
      `${((monotonicNow() - started) / SECOND).toFixed(1)} s wall`;
    Deno.stderr.writeSync(enc.encode(now === duration ? "\r\x1b[K" : line));
  };
  try {
    result = await runExperiment(o.params, { progress });
  } catch (e) {
    const known = e instanceof CcSelectionError || e instanceof ExperimentParamsError ||
      e instanceof ChannelParamsError;
    if (known) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const table = formatTable(result);
  try {
    if (o.json === "-") {
      await writeAll(Deno.stderr, enc.encode(table));
      await writeAll(Deno.stdout, enc.encode(toJson(result)));
    } else {
      console.log(table.trimEnd());
      if (o.json !== null) {
        await Deno.writeTextFile(o.json, toJson(result));
        console.log(`wrote ${o.json}`);
      }
    }
    if (o.plot !== null) {
      await Deno.writeTextFile(o.plot, renderSvg(result));
      (o.json === "-" ? console.error : console.log)(`wrote ${o.plot}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied)) throw e;
    console.error(`error: cannot write the output (${e.message}); check the --json/--plot path`);
    return 2;
  }
  console.error(
    `(${result.duration_s} s of virtual time in ${
      ((monotonicNow() - started) / SECOND).toFixed(2)
    } s of wall time)`,
  );
  const failed = result.flows.filter((f) => !f.verified);
  if (failed.length > 0) {
    console.error(
      `error: ${failed.length} flow(s) failed verification: ` +
        failed.map((f) => `flow ${f.id}: ${f.error ?? "no bytes delivered"}`).join("; "),
    );
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
