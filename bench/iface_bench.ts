/**
 * Interface hot paths over an in-memory link: receiving UDP datagrams (Ethernet + IPv4/IPv6
 * parse, UDP checksum, socket queue, recvFrom) and sending them to a resolved neighbour (route,
 * neighbour lookup, headers written into the link's buffer, checksum). 64 datagrams of 1000
 * bytes per iteration; divide by 64 for per-packet cost. The "rx ... ACKs" cases hand 64 TCP
 * ACK frames to a handler that only counts them: Ethernet + IP parse and demux alone.
 *
 * The "tx tcp" cases are the transmit path of a bulk TCP sender (`beginPacket` of a full-sized
 * TCP segment, a 1500-byte IP packet, to a resolved neighbour, then `commitPacket`, or
 * `commitPacketPartial` on a link that completes checksums) without the transport's own work:
 * the IP/Ethernet layer's cost per frame. The link lends one of 64 fixed frame buffers in turn,
 * like an AF_XDP UMEM, and flushes are held for the batch, like a driver loop.
 *
 * Run: deno bench -A bench/iface_bench.ts
 *
 * @module
 */

import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { Link } from "../stacks/link/link.ts";
import type { IpProtocolHandler, IpReceiveInfo } from "../stacks/tcpip/iface/protocol.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";

const BATCH = 64;
const PAYLOAD = 1000;

/** A link that replays a fixed set of frames and discards what is sent. */
class ReplayLink implements Link {
  readonly name = "replay";
  readonly mtu = 1500;
  readonly capabilities = { rxChecksumVerified: false, txChecksumOffload: false, maxBatch: 64 };
  frames: Uint8Array[] = [];
  pending = 0;
  sent = 0;
  private readonly tx = new Uint8Array(1514);
  constructor(readonly mac: Uint8Array) {}
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    let n = 0;
    while (n < max && this.pending > 0) {
      onFrame(this.frames[(this.pending-- - 1) % this.frames.length]!);
      n++;
    }
    return n;
  }
  transmitBuffer(length: number): Uint8Array | null {
    return this.tx.subarray(0, length);
  }
  commit(): void {
    this.sent++;
  }
  flush(): void {}
  close(): void {}
}

const macA = new Uint8Array([2, 0, 0, 0, 0, 1]);
const macB = new Uint8Array([2, 0, 0, 0, 0, 2]);
const cfg = (n: number): ConstructorParameters<typeof Interface>[1] => ({
  ipv4: [{ address: `198.18.0.${n}`, prefixLength: 24 }],
  ipv6: [{ address: `fd00::${n}`, prefixLength: 64 }],
});

/** Frames that B would send to A: captured from a real B interface. */
function capture(version: 4 | 6): Uint8Array[] {
  const linkB = new ReplayLink(macB);
  const captured: Uint8Array[] = [];
  linkB.commit = function (this: ReplayLink, length?: number): void {
    captured.push((this as unknown as { tx: Uint8Array }).tx.slice(0, length));
  } as ReplayLink["commit"];
  const b = new Interface(linkB, cfg(2));
  const dst = IpAddress.parse(version === 4 ? "198.18.0.1" : "fd00::1");
  b.neighbors.confirm(version, dst.bytes, macA, 0, true);
  const s = b.createUdp().bind(null, 5000);
  for (let i = 0; i < BATCH; i++) s.sendTo(new Uint8Array(PAYLOAD).fill(i), dst, 7);
  return captured;
}

for (const version of [4, 6] as const) {
  const link = new ReplayLink(macA);
  link.frames = capture(version);
  const a = new Interface(link, cfg(1));
  const sock = a.createUdp().bind(null, 7, { rxDatagrams: BATCH, rxBytes: BATCH * PAYLOAD });
  const into = new Uint8Array(2000);
  let now = 0;
  Deno.bench(`iface rx: ${BATCH} x ${PAYLOAD}-byte UDP/IPv${version} datagrams to a socket`, () => {
    link.pending = BATCH;
    a.poll(now += 1000);
    for (let r = sock.recvFrom(into); r !== null; r = sock.recvFrom(into));
  });
}

/** 32-byte TCP ACKs (header + timestamps) that B would send to A, in 66/86-byte frames. */
function captureAcks(version: 4 | 6): Uint8Array[] {
  const linkB = new ReplayLink(macB);
  const captured: Uint8Array[] = [];
  linkB.commit = function (this: ReplayLink, length?: number): void {
    captured.push((this as unknown as { tx: Uint8Array }).tx.slice(0, length));
  } as ReplayLink["commit"];
  const b = new Interface(linkB, cfg(2));
  const src = IpAddress.parse(version === 4 ? "198.18.0.2" : "fd00::2");
  const dst = IpAddress.parse(version === 4 ? "198.18.0.1" : "fd00::1");
  b.neighbors.confirm(version, dst.bytes, macA, 0, true);
  for (let i = 0; i < BATCH; i++) {
    const seg = b.beginPacket(src, dst, 6, 32, 0)!;
    seg.fill(0);
    seg[12] = 8 << 4; // data offset 8 words
    seg[13] = 0x10; // ACK
    seg[7] = i;
    b.commitPacket();
  }
  return captured;
}

/** A transport that only counts what it is handed: the IP layer's receive cost alone. */
class CountingHandler implements IpProtocolHandler {
  readonly protocol = 6;
  received = 0;
  receive(_info: IpReceiveInfo, payload: Uint8Array): void {
    this.received += payload.length;
  }
  poll(): void {}
  pollAt(): number {
    return Infinity;
  }
}

for (const version of [4, 6] as const) {
  const link = new ReplayLink(macA);
  link.frames = captureAcks(version);
  const a = new Interface(link, cfg(1));
  const h = new CountingHandler();
  a.register(h);
  let now = 0;
  Deno.bench(`iface rx: ${BATCH} TCP/IPv${version} ACKs (32-byte segments) to a handler`, () => {
    link.pending = BATCH;
    a.poll(now += 1000);
  });
}

for (const version of [4, 6] as const) {
  const link = new ReplayLink(macA);
  const a = new Interface(link, cfg(1));
  const dst = IpAddress.parse(version === 4 ? "198.18.0.2" : "fd00::2");
  a.neighbors.confirm(version, dst.bytes, macB, 0, true);
  const sock = a.createUdp().bind(null, 7);
  const data = new Uint8Array(PAYLOAD);
  Deno.bench(
    `iface tx: ${BATCH} x ${PAYLOAD}-byte UDP/IPv${version} datagrams, neighbour known`,
    () => {
      for (let i = 0; i < BATCH; i++) sock.sendTo(data, dst, 9);
    },
  );
}

/** A link that lends 64 fixed frame buffers in turn (like UMEM frames) and discards frames. */
class RingLink implements Link {
  readonly name = "ring";
  readonly mtu = 1500;
  readonly capabilities: Link["capabilities"];
  sent = 0;
  private readonly frames: Uint8Array[] = [];
  private next = 0;
  constructor(readonly mac: Uint8Array, offload: boolean) {
    this.capabilities = { rxChecksumVerified: false, txChecksumOffload: offload, maxBatch: 64 };
    const mem = new Uint8Array(64 * 2048);
    for (let i = 0; i < 64; i++) this.frames.push(mem.subarray(i * 2048, (i + 1) * 2048));
  }
  receive(): number {
    return 0;
  }
  transmitBuffer(_length: number): Uint8Array | null {
    return this.frames[this.next]!;
  }
  commit(): void {
    this.sent++;
    this.next = (this.next + 1) & 63;
  }
  commitPartial(): void {
    this.commit();
  }
  flush(): void {}
  close(): void {}
}

for (const [version, offload] of [[4, false], [4, true], [6, false]] as const) {
  const link = new RingLink(macA, offload);
  const a = new Interface(link, cfg(1));
  const src = IpAddress.parse(version === 4 ? "198.18.0.1" : "fd00::1");
  const dst = IpAddress.parse(version === 4 ? "198.18.0.2" : "fd00::2");
  a.neighbors.confirm(version, dst.bytes, macB, 0, true);
  a.poll(1000);
  const segment = version === 4 ? 1480 : 1460; // IP packet = link MTU
  const name = `iface tx tcp: ${BATCH} x ${segment}-byte TCP/IPv${version} segments, ` +
    `neighbour known${offload ? ", checksum offload" : ""}`;
  Deno.bench(name, () => {
    a.holdFlush();
    for (let i = 0; i < BATCH; i++) {
      const buf = a.beginPacket(src, dst, 6, segment, 0);
      if (buf === null) throw new Error("beginPacket failed");
      buf[0] = i;
      if (offload && a.canOffloadChecksum()) a.commitPacketPartial(16);
      else a.commitPacket();
    }
    a.releaseFlush();
  });
}
