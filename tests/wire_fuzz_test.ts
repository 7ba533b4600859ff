/**
 * Seeded mutation fuzzing of FrameParser over the captured fixture frames and the synthetic
 * frames: bit flips, byte changes, truncation, and edits of the length fields (Ethernet type,
 * IP lengths/IHL, extension-header and option lengths, UDP length, TCP data offset). Half of
 * the mutants get their checksums refreshed so the mutation reaches the layers beneath the
 * checksum checks. Every mutant must be accepted or dropped with a named reason; nothing may
 * throw, and the counters must add up.
 */
import assert from "node:assert/strict";
import {
  DROP_REASONS,
  type DropReason,
  foldChecksum,
  FrameParser,
  internetChecksum,
  onesComplementSum,
} from "../stacks/tcpip/wire/mod.ts";
import { allFixtureFrames, guarded, syntheticFrames } from "./support/wire_frames.ts";

const MUTANTS = 300_000;
/** Every GUARD_EVERY-th mutant is also parsed through guarded reads (slow, so sampled). */
const GUARD_EVERY = 100;

/** xorshift32: small, fast, deterministic. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

/** Where the layers of a seed frame start, learned by parsing the unmutated frame. */
interface Layout {
  frame: Uint8Array;
  l3Off: number;
  l3: string;
  l4Off: number;
  l4: string;
  /** Offsets of length-like fields worth editing, with their width in bytes. */
  lengthFields: [number, number][];
}

function layout(p: FrameParser, frame: Uint8Array): Layout {
  assert.equal(p.parse(frame), undefined, "seed frames must be valid");
  const l3Off = p.ethernet.headerLength;
  const fields: [number, number][] = [[12, 2]];
  if (p.ethernet.vlanPresent) fields.push([16, 2]);
  let l4Off = l3Off;
  if (p.l3 === "ipv4") {
    l4Off = l3Off + p.ipv4.options.length + 20;
    fields.push([l3Off, 1], [l3Off + 2, 2], [l3Off + 6, 2]);
  } else if (p.l3 === "ipv6") {
    l4Off = l3Off + p.ipv6.upperOffset;
    fields.push([l3Off + 4, 2], [l3Off + 6, 1]);
    if (p.ipv6.extHeaders.length > 0) fields.push([l3Off + 41, 1]);
  }
  if (p.l4 === "udp") fields.push([l4Off + 4, 2]);
  if (p.l4 === "tcp") fields.push([l4Off + 12, 1], [l4Off + 21, 1], [l4Off + 23, 1]);
  if (p.l4 === "icmpv6" && p.icmpv6.isNdp) {
    fields.push([l4Off + p.icmpv6.length - p.icmpv6.options.length + 1, 1]);
  }
  return { frame, l3Off, l3: p.l3, l4Off, l4: p.l4, lengthFields: fields };
}

/** Recomputes the IPv4 header checksum and the L4 checksum where the (mutated) bytes allow. */
function refreshChecksums(m: Uint8Array, lay: Layout): void {
  const { l3Off, l4Off } = lay;
  if (lay.l3 === "ipv4" && m.length >= l3Off + 20) {
    const hl = (m[l3Off]! & 0x0f) * 4;
    if (hl >= 20 && m.length >= l3Off + hl) {
      m[l3Off + 10] = m[l3Off + 11] = 0;
      const c = internetChecksum(m.subarray(l3Off, l3Off + hl));
      m[l3Off + 10] = c >>> 8;
      m[l3Off + 11] = c & 0xff;
    }
  }
  const ck = lay.l4 === "tcp"
    ? 16
    : lay.l4 === "udp"
    ? 6
    : lay.l4 === "icmpv4" || lay.l4 === "icmpv6"
    ? 2
    : -1;
  if (ck < 0 || m.length < l4Off + ck + 2) return;
  let end = m.length;
  let pseudo = 0;
  if (lay.l3 === "ipv4") {
    end = Math.min(end, l3Off + ((m[l3Off + 2]! << 8) | m[l3Off + 3]!));
    if (lay.l4 !== "icmpv4") {
      const src = m.subarray(l3Off + 12, l3Off + 20);
      pseudo = onesComplementSum(src) + m[l3Off + 9]! + Math.max(0, end - l4Off);
    }
  } else {
    end = Math.min(end, l3Off + 40 + ((m[l3Off + 4]! << 8) | m[l3Off + 5]!));
    pseudo = onesComplementSum(m.subarray(l3Off + 8, l3Off + 40)) +
      (lay.l4 === "tcp" ? 6 : lay.l4 === "udp" ? 17 : 58) + Math.max(0, end - l4Off);
  }
  if (end < l4Off + ck + 2) return;
  const seg = m.subarray(l4Off, end);
  seg[ck] = seg[ck + 1] = 0;
  const c = foldChecksum(onesComplementSum(seg, pseudo));
  seg[ck] = c >>> 8;
  seg[ck + 1] = c & 0xff;
}

function mutate(rng: Rng, lay: Layout): Uint8Array {
  let m = lay.frame.slice();
  const kind = rng.below(5);
  switch (kind) {
    case 0: { // 1..3 bit flips, biased to the headers
      for (let n = 1 + rng.below(3); n > 0; n--) {
        const i = rng.below(Math.min(m.length, rng.below(2) === 0 ? 96 : m.length));
        m[i]! ^= 1 << rng.below(8);
      }
      break;
    }
    case 1: { // a byte set to a random or boundary value
      const i = rng.below(Math.min(m.length, 120));
      const boundary = [0, 1, 2, 4, 5, 0x7f, 0x80, 0xfe, 0xff];
      m[i] = rng.below(2) === 0 ? rng.below(256) : boundary[rng.below(boundary.length)]!;
      break;
    }
    case 2: // truncation
      m = m.slice(0, rng.below(m.length + 1));
      break;
    case 3: { // a length field set to a random, boundary or nearby value
      const [off, width] = lay.lengthFields[rng.below(lay.lengthFields.length)]!;
      if (off + width > m.length) break;
      const old = width === 2 ? (m[off]! << 8) | m[off + 1]! : m[off]!;
      const choices = [
        0,
        1,
        old - 1,
        old + 1,
        old - 4,
        old + 4,
        old + 8,
        old * 2,
        0xffff,
        rng.next(),
      ];
      const v = choices[rng.below(choices.length)]! & (width === 2 ? 0xffff : 0xff);
      if (width === 2) {
        m[off] = v >>> 8;
        m[off + 1] = v & 0xff;
      } else m[off] = v;
      break;
    }
    default: { // grow: extra bytes after the frame (padding or junk)
      const g = new Uint8Array(m.length + 1 + rng.below(40));
      g.set(m);
      for (let i = m.length; i < g.length; i++) g[i] = rng.below(256);
      m = g;
      break;
    }
  }
  if (rng.below(2) === 0) refreshChecksums(m, lay);
  return m;
}

Deno.test(`FrameParser survives ${MUTANTS} seeded mutants: every one accepted or counted under a reason`, () => {
  const p = new FrameParser();
  const seeds = [...allFixtureFrames(), ...syntheticFrames()].map((f) => layout(p, f));
  const parser = new FrameParser();
  const rng = new Rng(0x5eed_1234);
  const seen = new Map<DropReason, number>();
  let accepted = 0;
  const out = new Uint8Array(70000);
  for (let n = 0; n < MUTANTS; n++) {
    const lay = seeds[rng.below(seeds.length)]!;
    const m = mutate(rng, lay);
    let r: DropReason | undefined;
    try {
      r = parser.parse(m);
    } catch (e) {
      const hex = Array.from(m, (b) => b.toString(16).padStart(2, "0")).join("");
      throw new Error(`parse threw on mutant ${n} (${hex}): ${e}`);
    }
    if (n % GUARD_EVERY === 0) {
      const probe = new FrameParser();
      assert.equal(probe.parse(guarded(m.slice())), r, `guarded parse of mutant ${n}`);
    }
    if (r === undefined) {
      accepted++;
      parser.emit(out); // must not throw either
    } else {
      assert.ok(DROP_REASONS.includes(r), `unknown reason ${r}`);
      seen.set(r, (seen.get(r) ?? 0) + 1);
    }
  }
  assert.equal(parser.accepted, accepted);
  assert.equal(parser.total, MUTANTS);
  let dropped = 0;
  for (const [r, c] of seen) {
    assert.equal(parser.drops.get(r), c, r);
    dropped += c;
  }
  assert.equal(parser.drops.total(), dropped);
  assert.equal(accepted + dropped, MUTANTS);
  // The mutations reach every layer's checks, not just the first one.
  for (
    const r of [
      "truncated",
      "bad-length",
      "bad-checksum",
      "bad-header-length",
      "bad-option",
      "bad-version",
    ] as const
  ) {
    assert.ok(
      (seen.get(r) ?? 0) > 0,
      `no mutant dropped for ${r}: ${JSON.stringify(parser.drops.snapshot())}`,
    );
  }
  assert.ok(accepted > MUTANTS / 20, `only ${accepted} accepted`);
  console.log(`accepted ${accepted}, dropped ${JSON.stringify(parser.drops.snapshot())}`);
});
