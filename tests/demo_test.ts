import assert from "node:assert/strict";
import { main } from "../sim/demo.ts";

Deno.test("the demo resolves neighbours, answers every ping and delivers every datagram", () => {
  const lines: string[] = [];
  const s = main((l) => lines.push(l));
  const out = lines.join("\n");
  assert.equal(s.pingsSent, 8);
  assert.equal(s.pingsAnswered, 8);
  assert.equal(s.datagramsSent, 6);
  assert.equal(s.datagramsReceived, 6);
  assert.equal(s.drops, 0);
  assert.match(out, /ARP +who-has 198\.18\.0\.2 tell 198\.18\.0\.1/);
  assert.match(out, /NDP +fd00::2 is-at/);
  assert.match(out, /echo reply from 198\.18\.0\.2 seq=2 56 bytes rtt=2\.002 ms/);
  assert.match(out, /echo reply from fd00::2 seq=3 56 bytes rtt=2\.002 ms/);
  assert.match(out, /b: udp from \[198\.18\.0\.1\]:40000 3000 bytes/);
  assert.match(out, /a: udp from \[fd00::2\]:7 "ack hello over IPv6"/);
  assert.match(out, /summary: 8\/8 pings answered, 6\/6 datagrams received/);
});

Deno.test("the demo output is identical on every run (virtual time, fixed seed)", () => {
  const one: string[] = [], two: string[] = [];
  main((l) => one.push(l));
  main((l) => two.push(l));
  assert.deepEqual(one, two);
});
