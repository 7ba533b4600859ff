import assert from "node:assert/strict";
import { Simulator } from "./simulator.ts";
import { EthernetSwitch } from "./switch.ts";
import { SimPort } from "./port.ts";
import { connect } from "./topology.ts";
import { buildFrame, sendAt, Sink } from "./testing.ts";

interface Star {
  sim: Simulator;
  sw: EthernetSwitch;
  hosts: SimPort[];
  sinks: Sink[];
}

function star(n: number, learning = false): Star {
  const sim = new Simulator();
  const sw = new EthernetSwitch(sim, { name: "sw", ports: n, learning });
  const hosts: SimPort[] = [];
  const sinks: Sink[] = [];
  for (let i = 0; i < n; i++) {
    const h = new SimPort(sim, { name: `h${i}` });
    connect(sim, h, sw.ports[i]!, { rateBps: 1e9, delay: 1_000 }, { rateBps: 1e9, delay: 1_000 });
    hosts.push(h);
    sinks.push(new Sink(sim, h));
  }
  return { sim, sw, hosts, sinks };
}

Deno.test("EthernetSwitch forwards a known unicast MAC to its port only", () => {
  const { sim, sw, hosts, sinks } = star(4);
  for (let i = 0; i < 4; i++) sw.addEntry(hosts[i]!.mac, i);
  sendAt(sim, hosts[0]!, 0, buildFrame({ src: hosts[0]!.mac, dst: hosts[2]!.mac, seq: 7 }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sinks.map((s) => s.count), [0, 0, 1, 0]);
  assert.equal(sw.stats.forwarded, 1);
  // 64 B at 1 Gbit/s = 512 ns per hop, 1 us propagation per hop, no switch delay.
  assert.equal(sinks[2]!.frames[0]!.time, 2 * (512 + 1_000));
});

Deno.test("EthernetSwitch floods broadcast, multicast and unknown unicast to all other ports", () => {
  const { sim, sw, hosts, sinks } = star(4);
  sw.addEntry(hosts[1]!.mac, 1);
  sendAt(sim, hosts[0]!, 0, buildFrame({ src: hosts[0]!.mac })); // broadcast
  sendAt(sim, hosts[3]!, 0, buildFrame({ dst: new Uint8Array([0x33, 0x33, 0, 0, 0, 1]) }));
  sendAt(sim, hosts[1]!, 0, buildFrame({ dst: new Uint8Array([2, 9, 9, 9, 9, 9]) }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sinks.map((s) => s.count), [2, 2, 3, 2]);
  assert.equal(sw.stats.flooded, 3);
});

Deno.test("EthernetSwitch does not send a frame back out of its ingress port", () => {
  const { sim, sw, hosts, sinks } = star(2);
  sw.addEntry(hosts[0]!.mac, 0);
  sendAt(sim, hosts[0]!, 0, buildFrame({ dst: hosts[0]!.mac }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sinks.map((s) => s.count), [0, 0]);
  assert.equal(sw.stats.filtered, 1);
});

Deno.test("EthernetSwitch with learning forwards to a source it has seen", () => {
  const { sim, sw, hosts, sinks } = star(3, true);
  sendAt(sim, hosts[1]!, 0, buildFrame({ src: hosts[1]!.mac })); // learn h1 (flooded)
  sendAt(sim, hosts[0]!, 100_000, buildFrame({ dst: hosts[1]!.mac }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sinks.map((s) => s.count), [1, 1, 1]);
  assert.equal(sw.lookup(hosts[1]!.mac), 1);
});
