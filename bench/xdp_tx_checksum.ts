/**
 * Per-frame transmit cost of a 1514-byte TCP frame on an `XdpLink`, with and without TX
 * checksum offload (the link part only; the stack integration comes later):
 *
 * - "stack sum + commit": what the stack does today: sum the 1480-byte TCP segment
 *   (`onesComplementSumRange`, WebAssembly SIMD with the copy in) with the pseudo-header,
 *   store the checksum, `commit()`.
 * - "seed + commitPartial": store the pseudo-header sum, `commitPartial()` (TX metadata).
 *
 * Both run on a veth lab (needs root) with the kernel in copy mode. Frames go to a MAC the peer
 * does not own, so its stack drops them at once (PACKET_OTHERHOST) and only our side's work
 * is in the "total" numbers. Reported per frame, median of alternating rounds:
 * - "user": transmitBuffer + header/seed writes + (sum) + commit, without `flush()`;
 * - "total": the same plus `flush()` every 64 frames (kick: the kernel builds and sends skbs).
 *   With veth TX checksumming on (default) the kernel passes CHECKSUM_PARTIAL through; the
 *   third variant turns it off so the kernel completes the sum itself (validate_xmit_skb), to
 *   show where the cost moves.
 *
 *     deno run -A bench/xdp_tx_checksum.ts [--frames 100000] [--rounds 5]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { onesComplementSumRange } from "../stacks/tcpip/wire/checksum.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { frames: { type: "string", default: "100000" }, rounds: { type: "string" } },
});
const FRAMES = Number(values.frames);
const ROUNDS = Number(values.rounds ?? "5");
const LEN = 1514;
const BATCH = 64;

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Writes a fixed Ethernet/IPv4/TCP frame (payload pattern) once into `f`. */
function template(f: Uint8Array): void {
  const v = new DataView(f.buffer, f.byteOffset, f.length);
  f.set([0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01], 0); // to a MAC nobody owns
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, LEN - 14);
  v.setUint8(22, 64);
  v.setUint8(23, 6);
  f.set([198, 18, 0, 1, 198, 18, 0, 2], 26);
  v.setUint8(46, 5 << 4);
  v.setUint8(47, 0x18);
  for (let i = 54; i < LEN; i++) f[i] = (i * 31) & 0xff;
}

const PSEUDO = fold(198 * 256 + 18 + 1 + 198 * 256 + 18 + 2 + 6 + (LEN - 34));
let sink = 0;

/** One round of `FRAMES` frames; returns [user ns/frame, total ns/frame]. */
function round(link: XdpLink, partial: boolean): [number, number] {
  let user = 0;
  const t0 = performance.now();
  for (let sent = 0; sent < FRAMES;) {
    const u0 = performance.now();
    let n = 0;
    for (; n < BATCH; n++) {
      const f = link.transmitBuffer(LEN);
      if (f === null) break;
      if (f[12] !== 0x08) template(f); // a frame's first use; later uses rewrite only headers
      f[38] = sent + n; // the sequence number changes per segment
      if (partial) {
        f[50] = PSEUDO >>> 8;
        f[51] = PSEUDO & 0xff;
        link.commitPartial(LEN, 34, 16);
      } else {
        f[50] = 0;
        f[51] = 0;
        const c = ~onesComplementSumRange(f, 34, LEN, PSEUDO) & 0xffff;
        f[50] = c >>> 8;
        f[51] = c & 0xff;
        link.commit(LEN);
      }
    }
    user += performance.now() - u0;
    sent += n;
    link.flush();
    sink ^= n;
  }
  const total = performance.now() - t0;
  return [(user * 1e6) / FRAMES, (total * 1e6) / FRAMES];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

await using lab = await Lab.up({ offloads: "off" });
using link = XdpLink.open({ ifname: lab.nsmIf, handleSignals: false });
if (link.txChecksum !== "offload") {
  throw new Error(`no TX checksum offload: ${link.txChecksumReason}`);
}
const variants: [string, boolean, boolean][] = [
  ["stack sum + commit", false, true],
  ["seed + commitPartial (veth tx on: partial passed on)", true, true],
  ["seed + commitPartial (veth tx off: kernel sums)", true, false],
];
const results = variants.map(() => ({ user: [] as number[], total: [] as number[] }));
let devTx = true;
for (const [, partial] of variants) round(link, partial); // warm-up (JIT, frame templates)
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < variants.length; k++) {
    const [, partial, tx] = variants[(k + r) % variants.length]!;
    if (tx !== devTx) {
      await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", tx ? "on" : "off"]);
      devTx = tx;
    }
    const [u, t] = round(link, partial);
    const i = (k + r) % variants.length;
    results[i]!.user.push(u);
    results[i]!.total.push(t);
  }
}
const s = link.stats();
console.log(
  `${FRAMES} frames x ${ROUNDS} rounds per variant, ${LEN}-byte frames, batch ${BATCH}, ` +
    `copy mode, kernel ${Deno.osRelease()}`,
);
console.log(
  "variant                                                  user ns/frame  total ns/frame",
);
variants.forEach(([name], i) => {
  const r = results[i]!;
  console.log(
    `${name.padEnd(56)} ${median(r.user).toFixed(0).padStart(13)}  ${
      median(r.total).toFixed(0).padStart(14)
    }   (user ${r.user.map((x) => x.toFixed(0)).join("/")}; total ${
      r.total.map((x) => x.toFixed(0)).join("/")
    })`,
  );
});
console.log(
  `link stats: txPackets ${s.txPackets}, offloaded ${s.txChecksumOffloaded}, ` +
    `txNoFrame ${s.txNoFrame}, kernel txInvalidDescs ${s.kernel.txInvalidDescs} (sink ${sink})`,
);
