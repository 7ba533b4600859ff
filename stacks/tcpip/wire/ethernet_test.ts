import assert from "node:assert/strict";
import { EthernetRepr, EthernetView, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from "./ethernet.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

const UNTAGGED = hex("ffffffffffff020000000101" + "0806" + "00010800");
// PCP 5, DEI 1, VID 7 -> TCI 0xb007; inner IPv4.
const TAGGED = hex("020000000102020000000101" + "8100b007" + "0800" + "45");

Deno.test("EthernetRepr.parse() reads MACs, EtherType and the payload view", () => {
  const e = new EthernetRepr();
  assert.equal(e.parse(UNTAGGED), undefined);
  assert.deepEqual(Array.from(e.dst), [255, 255, 255, 255, 255, 255]);
  assert.deepEqual(Array.from(e.src), [2, 0, 0, 0, 1, 1]);
  assert.equal(e.ethertype, ETHERTYPE_ARP);
  assert.equal(e.vlanPresent, false);
  assert.equal(e.headerLength, 14);
  assert.deepEqual(Array.from(e.payload), [0, 1, 8, 0]);
  assert.equal(e.payload.buffer, UNTAGGED.buffer, "payload is a view, not a copy");
});

Deno.test("EthernetRepr.parse() reads an 802.1Q tag: VID, PCP, DEI and the inner EtherType", () => {
  const e = new EthernetRepr();
  assert.equal(e.parse(TAGGED), undefined);
  assert.equal(e.vlanPresent, true);
  assert.equal(e.vlanId, 7);
  assert.equal(e.pcp, 5);
  assert.equal(e.dei, true);
  assert.equal(e.ethertype, ETHERTYPE_IPV4);
  assert.equal(e.headerLength, 18);
  assert.deepEqual(Array.from(e.payload), [0x45]);
});

Deno.test("EthernetRepr.emit() round-trips tagged and untagged headers", () => {
  for (const frame of [UNTAGGED, TAGGED]) {
    const e = new EthernetRepr();
    e.parse(frame);
    const out = new Uint8Array(frame.length);
    const n = e.emit(out);
    out.set(e.payload, n);
    assert.deepEqual(out, frame);
  }
});

Deno.test("EthernetRepr.parse() rejects frames shorter than the header with reason 'truncated'", () => {
  assert.equal(new EthernetRepr().parse(UNTAGGED.subarray(0, 13)), "truncated");
  assert.equal(new EthernetRepr().parse(TAGGED.subarray(0, 17)), "truncated");
  assert.equal(new EthernetRepr().parse(new Uint8Array(0)), "truncated");
});

Deno.test("EthernetView honours the byteOffset of a subarray", () => {
  const big = new Uint8Array(40).fill(0xee);
  big.set(TAGGED, 9);
  const v = new EthernetView().wrap(big.subarray(9, 9 + TAGGED.length));
  assert.equal(v.tagged, true);
  assert.equal(v.headerLength, 18);
  assert.equal(v.ethertype, ETHERTYPE_IPV4);
  assert.equal(v.tci, 0xb007);
});
