/**
 * Packets per second of the AF_XDP driver alone: a TypeScript UDP reflector on `XdpLink` (this
 * process, NSM end of a veth lab) answers a load generator that runs on the peer end (also
 * `XdpLink`, in the peer namespace, spawned with `Deno.execPath()`). No stack is involved:
 * the reflector swaps MAC/IP/port fields and copies the frame into a TX frame.
 *
 * ```text
 * sudo deno run -A bench/xdp_reflector.ts [sink] [--seconds 5] [--size 60] [--ring 2048]
 *                                         [--attach auto|skb|native] [--batch 64]
 * ```
 *
 * `sink` only counts received frames (receive path alone, nothing sent back).
 *
 * Prints one JSON line: frames reflected per second (our side); busyNsPerFrame, the wall time
 * of loop iterations that had frames divided by frames (TypeScript + the kernel's copy-mode
 * work inside our syscalls), and capacityPpsOneCore, its inverse (what one dedicated core
 * would sustain: robust against other load, unlike reflectedPps); frames the generator sent
 * and got back per second; the kernel drop counters. Needs root (and ~1 spare core each
 * for generator and reflector: on a 2-vCPU VM they compete with the kernel's copy path).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import type { AttachMode } from "../xdp/bpf.ts";

function opts(args: string[]): {
  seconds: number;
  size: number;
  ring: number;
  batch: number;
  attach: AttachMode;
  role: string;
  ifname: string;
  dstMac: string;
} {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seconds: { type: "string", default: "5" },
      size: { type: "string", default: "60" },
      ring: { type: "string", default: "2048" },
      batch: { type: "string", default: "64" },
      attach: { type: "string", default: "auto" },
      ifname: { type: "string", default: "" },
      "dst-mac": { type: "string", default: "" },
    },
  });
  return {
    seconds: Number(values.seconds),
    size: Number(values.size),
    ring: Number(values.ring),
    batch: Number(values.batch),
    attach: values.attach as AttachMode,
    role: positionals[0] ?? "run",
    ifname: values.ifname,
    dstMac: values["dst-mac"],
  };
}

function mac(s: string): number[] {
  return s.split(":").map((h) => parseInt(h, 16));
}

/** The generator (peer side): blasts UDP frames to the NSM end and counts what comes back. */
function generate(o: ReturnType<typeof opts>): void {
  const link = XdpLink.open({
    ifname: o.ifname,
    ringSize: o.ring,
    attachMode: o.attach,
    handleSignals: true,
  });
  const frame = new Uint8Array(o.size);
  frame.set(mac(o.dstMac), 0);
  frame.set(link.mac, 6);
  const v = new DataView(frame.buffer);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, o.size - 14);
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  frame.set([198, 18, 0, 2, 198, 18, 0, 1], 26);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(24, ~sum & 0xffff);
  v.setUint16(34, 5555);
  v.setUint16(36, 9);
  v.setUint16(38, o.size - 34);
  let sent = 0;
  let back = 0;
  const count = (_f: Uint8Array): void => {
    back++;
  };
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < o.batch; k++) {
      const buf = link.transmitBuffer(o.size);
      if (buf === null) break;
      buf.set(frame);
      link.commit(o.size);
      sent++;
    }
    link.flush();
    link.receive(count, 256);
    now = performance.now();
  }
  const secs = (now - t0) / 1000;
  // Drain what is still in flight back to us.
  const drainEnd = performance.now() + 200;
  while (performance.now() < drainEnd) link.receive(count, 256);
  const s = link.stats();
  link.close();
  console.log(
    JSON.stringify({
      sentPps: Math.round(sent / secs),
      backPps: Math.round(back / secs),
      sent,
      back,
      kernel: s.kernel,
      txNoFrame: s.txNoFrame,
    }),
  );
}

/** The reflector (our side) plus the orchestration: lab, generator process, report. */
async function reflect(o: ReturnType<typeof opts>): Promise<void> {
  await using lab = await Lab.up({ offloads: "off" });
  using link = XdpLink.open({ ifname: lab.nsmIf, ringSize: o.ring, attachMode: o.attach });
  const gen = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      lab.peerNs,
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "gen",
      "--ifname",
      lab.peerIf,
      "--dst-mac",
      lab.nsmMac,
      "--seconds",
      String(o.seconds),
      "--size",
      String(o.size),
      "--ring",
      String(o.ring),
      "--attach",
      o.attach,
      "--batch",
      String(o.batch),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let reflected = 0;
  let noBuf = 0;
  const sink = (_f: Uint8Array): void => {
    reflected++;
  };
  const reflectFrame = (f: Uint8Array): void => {
    const len = f.length;
    const out = link.transmitBuffer(len);
    if (out === null) {
      noBuf++;
      return;
    }
    out.set(f);
    for (let i = 0; i < 6; i++) {
      out[i] = f[i + 6]!;
      out[i + 6] = f[i]!;
    }
    if (len >= 42 && f[12] === 0x08 && f[13] === 0x00) {
      for (let i = 0; i < 4; i++) {
        out[26 + i] = f[30 + i]!;
        out[30 + i] = f[26 + i]!;
      }
      out[34] = f[36]!;
      out[35] = f[37]!;
      out[36] = f[34]!;
      out[37] = f[35]!;
    }
    link.commit(len);
    reflected++;
  };
  const onFrame = o.role === "sink" ? sink : reflectFrame;
  // Wait for the generator's first frame (its startup takes a while), then measure.
  const startDeadline = performance.now() + 10_000;
  while (link.receive(onFrame, o.batch) === 0 && performance.now() < startDeadline) {
    link.flush();
    await link.wait(10);
  }
  reflected = 0;
  noBuf = 0;
  const statsBefore = link.stats();
  const t0 = performance.now();
  const end = t0 + (o.seconds - 0.5) * 1000;
  let now = t0;
  let idle = 0;
  // Wall time of the iterations that had frames: our TypeScript plus the kernel work done in
  // our system calls (copy-mode TX runs the whole veth transmit inside sendto()).
  let busyMs = 0;
  while (now < end) {
    const n = link.receive(onFrame, o.batch);
    link.flush();
    const after = performance.now();
    if (n === 0) idle++;
    else busyMs += after - now;
    now = after;
  }
  const secs = (now - t0) / 1000;
  const statsAfter = link.stats();
  // Keep reflecting until the generator is done so it sees its tail.
  let done = false;
  const status = gen.status.then((s) => {
    done = true;
    return s;
  });
  const tail = performance.now() + 15_000;
  while (!done && performance.now() < tail) {
    link.receive(onFrame, o.batch);
    link.flush();
    await link.wait(1);
  }
  await status;
  const out = await gen.output().catch(() => null);
  const genText = out === null ? "" : new TextDecoder().decode(out.stdout).trim();
  const genErr = out === null ? "" : new TextDecoder().decode(out.stderr).trim();
  console.log(JSON.stringify({
    role: o.role === "sink" ? "sink" : "reflect",
    reflectedPps: Math.round(reflected / secs),
    busyNsPerFrame: Math.round((busyMs * 1e6) / Math.max(1, reflected)),
    capacityPpsOneCore: Math.round(reflected / (busyMs / 1000)),
    seconds: Number(secs.toFixed(2)),
    frameSize: o.size,
    ring: o.ring,
    batch: o.batch,
    mode: link.mode,
    attachMode: link.attachMode,
    noTxBuffer: noBuf,
    idlePolls: idle,
    kernelDelta: {
      rxRingFull: statsAfter.kernel.rxRingFull - statsBefore.kernel.rxRingFull,
      rxDropped: statsAfter.kernel.rxDropped - statsBefore.kernel.rxDropped,
      rxFillRingEmpty: statsAfter.kernel.rxFillRingEmptyDescs -
        statsBefore.kernel.rxFillRingEmptyDescs,
    },
    generator: genText === "" ? genErr.slice(0, 500) : JSON.parse(genText.split("\n").pop()!),
  }));
}

if (import.meta.main) {
  const o = opts(Deno.args);
  if (o.role === "gen") generate(o);
  else await reflect(o);
}
