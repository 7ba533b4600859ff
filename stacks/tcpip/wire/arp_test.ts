import assert from "node:assert/strict";
import { ARP_REPLY, ARP_REQUEST, ArpRepr, ArpView } from "./arp.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

// who-has 198.18.1.2 tell 198.18.1.1 (02:00:00:00:01:01), then 18 bytes of Ethernet padding.
const REQUEST = hex(
  "0001080006040001" + "020000000101" + "c6120101" + "000000000000" + "c6120102" + "00".repeat(18),
);

Deno.test("ArpRepr.parse() reads an Ethernet/IPv4 request and ignores padding", () => {
  const a = new ArpRepr();
  assert.equal(a.parse(REQUEST), undefined);
  assert.equal(a.operation, ARP_REQUEST);
  assert.deepEqual(Array.from(a.sha), [2, 0, 0, 0, 1, 1]);
  assert.equal(a.spa, 0xc6120101);
  assert.deepEqual(Array.from(a.tha), [0, 0, 0, 0, 0, 0]);
  assert.equal(a.tpa, 0xc6120102);
});

Deno.test("ArpRepr.emit() round-trips a reply", () => {
  const a = new ArpRepr();
  a.operation = ARP_REPLY;
  a.sha.set([2, 0, 0, 0, 1, 2]);
  a.spa = 0xc6120102;
  a.tha.set([2, 0, 0, 0, 1, 1]);
  a.tpa = 0xc6120101;
  const out = new Uint8Array(28);
  assert.equal(a.emit(out), 28);
  const b = new ArpRepr();
  assert.equal(b.parse(out), undefined);
  assert.equal(b.operation, ARP_REPLY);
  assert.deepEqual(b.tha, a.tha);
  assert.equal(b.tpa, a.tpa);
  assert.deepEqual(out.subarray(0, 8), REQUEST.subarray(0, 8).map((x, i) => (i === 7 ? 2 : x)));
});

Deno.test("ArpRepr.parse() rejects non-Ethernet/IPv4 formats with reason 'bad-arp-format'", () => {
  for (const [off, value] of [[1, 6], [2, 0x86], [4, 8], [5, 16], [7, 3]] as const) {
    const p = REQUEST.slice();
    p[off] = value;
    assert.equal(new ArpRepr().parse(p), "bad-arp-format", `byte ${off} = ${value}`);
  }
});

Deno.test("ArpRepr.parse() rejects fewer than 28 bytes with reason 'truncated'", () => {
  assert.equal(new ArpRepr().parse(REQUEST.subarray(0, 27)), "truncated");
});

Deno.test("ArpView reads fields at the view's byteOffset", () => {
  const big = new Uint8Array(60);
  big.set(REQUEST.subarray(0, 28), 3);
  const v = new ArpView().wrap(big.subarray(3));
  assert.equal(v.htype, 1);
  assert.equal(v.ptype, 0x0800);
  assert.equal(v.operation, 1);
  assert.equal(v.spa, 0xc6120101);
  assert.equal(v.tpa, 0xc6120102);
});
