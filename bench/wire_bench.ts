/**
 * Wire-layer speed: whole-frame parse+verify cost and Internet checksum throughput.
 *
 * Run: `deno bench -A bench/wire_bench.ts`. Checksum GB/s = bytes / (ns per iteration).
 *
 * @module
 */
import { FrameParser } from "../stacks/tcpip/wire/frame.ts";
import { onesComplementSum } from "../stacks/tcpip/wire/checksum.ts";
import { tcpSackFrameV4 } from "../tests/support/wire_frames.ts";

const ack = tcpSackFrameV4(0); // Ethernet/IPv4/TCP, timestamps + 2 SACK blocks, no data
const data = tcpSackFrameV4(1448); // the same with a full 1448-byte payload
const parser = new FrameParser();
if (parser.parse(ack) !== undefined || parser.parse(data) !== undefined) {
  throw new Error("benchmark frames must be valid");
}

const small = new Uint8Array(1500).map((_, i) => i * 7);
const large = new Uint8Array(65536).map((_, i) => i * 13);
let sink = 0;

Deno.bench("FrameParser.parse: Eth/IPv4/TCP TS+SACK, 0 B payload (86 B frame)", {
  group: "frame",
  baseline: true,
}, () => {
  if (parser.parse(ack) !== undefined) throw new Error("rejected");
});

Deno.bench("FrameParser.parse: Eth/IPv4/TCP TS+SACK, 1448 B payload", { group: "frame" }, () => {
  if (parser.parse(data) !== undefined) throw new Error("rejected");
});

Deno.bench("onesComplementSum 1500 B", { group: "checksum", baseline: true }, () => {
  sink ^= onesComplementSum(small);
});

Deno.bench("onesComplementSum 64 KiB", { group: "checksum" }, () => {
  sink ^= onesComplementSum(large);
});

Deno.bench("onesComplementSum 1500 B at an odd offset", { group: "checksum" }, () => {
  sink ^= onesComplementSum(large.subarray(1, 1501));
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
