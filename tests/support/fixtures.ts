/**
 * Loads the committed pcap fixtures (tests/fixtures/NAME.pcap) together with tshark's view of
 * each frame (NAME.expect.json). See tests/fixtures/README.md for what each file holds and how
 * the field values are formatted.
 *
 * ```ts
 * const fx = loadFixture("tcp_options");
 * fx.records.forEach((rec, i) => {
 *   const want = fx.expect.frames[i]!; // { "tcp.seq_raw": "676989186", "ip.src": ..., ... }
 *   rec.data; // the Ethernet frame as captured
 * });
 * ```
 *
 * @module
 */

import { PcapReader, type PcapRecord } from "../../stacks/link/pcap.ts";

/** Names of the committed fixtures, each with NAME.pcap and NAME.expect.json. */
export const FIXTURE_NAMES = [
  "arp_icmp4",
  "ndp_icmp6",
  "tcp_options",
  "udp",
  "frag_icmp_errors",
] as const;

/** One of `FIXTURE_NAMES`. */
export type FixtureName = typeof FIXTURE_NAMES[number];

/** Parsed NAME.expect.json. */
export interface FixtureExpect {
  /** The pcap file name, e.g. "udp.pcap". */
  readonly file: string;
  /** What traffic the capture holds. */
  readonly about: string;
  /** The tshark command line (after the binary) that produced `frames`. */
  readonly tsharkArgs: readonly string[];
  /** tshark field names, in column order. */
  readonly fields: readonly string[];
  /**
   * One object per frame, in file order: field name -> tshark's text for the FIRST occurrence
   * of that field in the frame (which for ICMP errors may come from the quoted packet), or
   * null when the frame has no such field.
   */
  readonly frames: readonly Readonly<Record<string, string | null>>[];
}

/** A fixture: its records (views into the file bytes) and tshark's expectations. */
export interface Fixture {
  /** Fixture name. */
  readonly name: FixtureName;
  /** Raw file bytes. */
  readonly bytes: Uint8Array;
  /** Reader over `bytes` (byte order, resolution, snaplen). */
  readonly reader: PcapReader;
  /** All records in file order. */
  readonly records: readonly PcapRecord[];
  /** Parsed NAME.expect.json; `expect.frames[i]` describes `records[i]`. */
  readonly expect: FixtureExpect;
}

const DIR = new URL("../fixtures/", import.meta.url);

/** Path (URL) of a file in tests/fixtures/. */
export function fixturePath(file: string): URL {
  return new URL(file, DIR);
}

/** Reads NAME.pcap and NAME.expect.json (needs --allow-read). */
export function loadFixture(name: FixtureName): Fixture {
  const bytes = Deno.readFileSync(fixturePath(`${name}.pcap`));
  const reader = new PcapReader(bytes);
  const expect = JSON.parse(
    Deno.readTextFileSync(fixturePath(`${name}.expect.json`)),
  ) as FixtureExpect;
  return { name, bytes, reader, records: reader.records(), expect };
}
