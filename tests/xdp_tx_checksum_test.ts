/**
 * XdpLink TX checksum offload (AF_XDP TX metadata) against the Linux stack on a veth lab:
 * frames committed with `commitPartial()` carry only the pseudo-header sum, and the kernel
 * (or veth's peer) must accept them; a frame seeded with a wrong pseudo-header sum must be
 * rejected once the checksum is actually completed (device TX checksumming off, or
 * XDP_UMEM_TX_SW_CSUM). Needs root, iproute2, ethtool, python3, tcpdump.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab } from "../xdp/lab.ts";
import { XdpLink, type XdpLinkOptions } from "../xdp/xdp_link.ts";
import { collect, inetChecksum, ipv4Bytes, PeerCapture, writeUdpFrame } from "./xdp_support.ts";

const gate = needsAll(
  needsRoot(),
  needsTool("ip"),
  needsTool("ethtool"),
  needsTool("python3"),
  needsTool("tcpdump"),
  needsTool("timeout"),
);

const UDP_PORT = 7777;
const TCP_PORT = 8080;

/** Folded, uncomplemented IPv4 pseudo-header sum (what Linux leaves for CHECKSUM_PARTIAL). */
function pseudoSum(src: string, dst: string, proto: number, l4Len: number): number {
  const s = ipv4Bytes(src);
  const d = ipv4Bytes(dst);
  let sum = ((s[0]! << 8) | s[1]!) + ((s[2]! << 8) | s[3]!) + ((d[0]! << 8) | d[1]!) +
    ((d[2]! << 8) | d[3]!) + proto + l4Len;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Whether the L4 checksum of an Ethernet/IPv4 frame verifies (pseudo-header included). */
function l4ChecksumOk(frame: Uint8Array): boolean {
  const ihl = (frame[14]! & 0xf) * 4;
  const l4 = frame.subarray(14 + ihl, 14 + ((frame[16]! << 8) | frame[17]!));
  const buf = new Uint8Array(12 + l4.length);
  buf.set(frame.subarray(26, 34));
  buf[9] = frame[23]!;
  buf[10] = l4.length >>> 8;
  buf[11] = l4.length & 0xff;
  buf.set(l4, 12);
  return inetChecksum(buf) === 0;
}

/** One counter of /proc/net/snmp in the peer's namespace (e.g. "Udp", "InCsumErrors"). */
async function snmp(lab: Lab, group: string, field: string): Promise<number> {
  const r = await lab.peer(["cat", "/proc/net/snmp"]);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith(`${group}:`));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const i = names.indexOf(field);
  assert.ok(i > 0, `${group} ${field} in /proc/net/snmp`);
  return Number(values[i]);
}

/**
 * Writes an Ethernet/IPv4/UDP datagram to the peer's UDP_PORT into a lent buffer, seeds the
 * checksum field with the pseudo-header sum (+ `seedError`) and commits it with
 * `commitPartial()`.
 */
function sendPartialUdp(
  link: XdpLink,
  lab: Lab,
  srcPort: number,
  payload: Uint8Array,
  seedError = 0,
): void {
  const len = 42 + payload.length;
  const buf = link.transmitBuffer(len);
  assert.ok(buf !== null, "a TX frame is free");
  writeUdpFrame(buf, {
    srcMac: lab.nsmMac,
    dstMac: lab.peerMac,
    srcIp: lab.nsmV4,
    dstIp: lab.peerV4,
    srcPort,
    dstPort: UDP_PORT,
    payload,
  });
  const seed = (pseudoSum(lab.nsmV4, lab.peerV4, 17, 8 + payload.length) + seedError) & 0xffff;
  buf[40] = seed >>> 8;
  buf[41] = seed & 0xff;
  link.commitPartial(len, 34, 6);
  link.flush();
}

/** Starts a peer UDP receiver that prints each datagram's payload (text) for `seconds`. */
function udpReceiver(lab: Lab, count: number, seconds: number): Promise<string[]> {
  const script = "import socket, sys\n" +
    "r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
    `r.bind(('0.0.0.0', ${UDP_PORT})); r.settimeout(${seconds})\n` +
    "print('ready', flush=True)\n" +
    `for i in range(${count}):\n` +
    "    try:\n" +
    "        d, a = r.recvfrom(65535)\n" +
    "    except socket.timeout:\n" +
    "        break\n" +
    "    print(len(d), d[:16].decode('latin-1'), flush=True)\n";
  return lab.peer(["timeout", String(seconds + 5), "python3", "-c", script], true).then((r) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").slice(1).filter((l) => l !== "");
  });
}

/** Flushes `link` until `p` settles (bounded by the peer's own timeout). */
async function flushUntil<T>(link: XdpLink, p: Promise<T>): Promise<T> {
  let done = false;
  const q = p.finally(() => {
    done = true;
  });
  for (let i = 0; i < 1000 && !done; i++) {
    link.flush();
    await new Promise((r) => setTimeout(r, 10));
  }
  return await q;
}

async function openLab(mtu = 1500): Promise<Lab> {
  const lab = await Lab.up({ offloads: "off", mtu });
  try {
    await lab.staticNeighbours();
  } catch (e) {
    await lab.down();
    throw e;
  }
  return lab;
}

function open(lab: Lab, extra: Partial<XdpLinkOptions> = {}): XdpLink {
  return XdpLink.open({
    ifname: lab.nsmIf,
    ringSize: 256,
    handleSignals: false,
    onWarning: () => {},
    ...extra,
  });
}

/** Waits until the peer receiver printed "ready" (python started and bound). */
async function readyDelay(): Promise<void> {
  // The receiver binds within a few hundred ms even on a loaded machine; the datagrams it
  // must see are sent after this, and it waits `seconds` for them.
  await new Promise((r) => setTimeout(r, 700));
}

Deno.test({
  name: "XdpLink commitPartial on veth: the kernel takes the TX metadata and the peer's UDP " +
    "socket receives the datagram, whose checksum on the peer is partial or complete",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab();
    using link = open(lab);
    assert.equal(link.txChecksum, "offload", `reason: ${link.txChecksumReason}`);
    assert.equal(link.capabilities.txChecksumOffload, true);
    await using cap = await PeerCapture.start(lab, `udp dst port ${UDP_PORT}`, 1);
    const csumErrors = await snmp(lab, "Udp", "InCsumErrors");
    const got = udpReceiver(lab, 1, 8);
    await readyDelay();
    sendPartialUdp(link, lab, 40000, new TextEncoder().encode("offload-ok".padEnd(1400, ".")));
    const lines = await flushUntil(link, got);
    assert.deepEqual(lines, ["1400 offload-ok......"]);
    assert.equal(await snmp(lab, "Udp", "InCsumErrors"), csumErrors);
    const recs = await cap.records(5000);
    assert.equal(recs.length, 1, cap.log);
    const f = recs[0]!.data;
    const field = (f[40]! << 8) | f[41]!;
    // veth hands the skb over as CHECKSUM_PARTIAL: tcpdump sees the seed; a device that
    // completes it shows the full checksum. Anything else is a bug.
    const partial = field === pseudoSum(lab.nsmV4, lab.peerV4, 17, 1408);
    assert.ok(partial || l4ChecksumOk(f), `checksum field 0x${field.toString(16)}`);
    const s = link.stats();
    assert.equal(s.txChecksumOffloaded, 1);
    assert.equal(s.txChecksumBadRequest, 0);
    assert.equal(s.kernel.txInvalidDescs, 0);
  },
});

for (
  const variant of [
    { what: "device TX checksumming off (validate_xmit_skb completes it)", sw: false },
    { what: "XDP_UMEM_TX_SW_CSUM (xsk completes it on the CPU)", sw: true },
  ]
) {
  Deno.test({
    name: `XdpLink commitPartial with ${variant.what}: a correct seed arrives with a valid ` +
      "checksum, a wrong seed is dropped by the peer as InCsumErrors",
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      await using lab = await openLab();
      if (!variant.sw) await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off"]);
      using link = open(lab, variant.sw ? { txChecksumOffload: "software" } : {});
      assert.equal(link.txChecksum, variant.sw ? "software" : "offload");
      await using cap = await PeerCapture.start(lab, `udp dst port ${UDP_PORT}`, 2);
      const before = await snmp(lab, "Udp", "InCsumErrors");
      const got = udpReceiver(lab, 2, 4);
      await readyDelay();
      const enc = new TextEncoder();
      sendPartialUdp(link, lab, 40001, enc.encode("wrong-seed".padEnd(999, "x")), 1);
      sendPartialUdp(link, lab, 40002, enc.encode("right-seed".padEnd(999, "y")));
      const lines = await flushUntil(link, got);
      assert.deepEqual(lines, ["999 right-seedyyyyyy"], "only the correctly seeded datagram");
      assert.equal(await snmp(lab, "Udp", "InCsumErrors"), before + 1);
      const recs = await cap.records(5000);
      assert.equal(recs.length, 2, cap.log);
      // On the wire both checksums are complete; only the right one verifies.
      const bySrc = (port: number) =>
        recs.map((r) => r.data).find((d) => ((d[34]! << 8) | d[35]!) === port)!;
      assert.equal(l4ChecksumOk(bySrc(40001)), false);
      assert.equal(l4ChecksumOk(bySrc(40002)), true);
      assert.equal(link.stats().txChecksumOffloaded, 2);
      assert.equal(link.stats().kernel.txInvalidDescs, 0);
    },
  });
}

/** An Ethernet/IPv4/TCP SYN (20-byte header, no options) to the peer's TCP_PORT. */
function sendPartialSyn(link: XdpLink, lab: Lab, srcPort: number, seedError = 0): void {
  const len = 14 + 20 + 20;
  const b = link.transmitBuffer(len)!;
  assert.ok(b !== null);
  b.fill(0);
  // Reuse the UDP writer for Ethernet + IPv4, then turn it into TCP.
  writeUdpFrame(b, {
    srcMac: lab.nsmMac,
    dstMac: lab.peerMac,
    srcIp: lab.nsmV4,
    dstIp: lab.peerV4,
    srcPort: 0,
    dstPort: 0,
    payload: new Uint8Array(12),
  });
  const v = new DataView(b.buffer, b.byteOffset, len);
  v.setUint8(23, 6);
  v.setUint16(24, 0);
  v.setUint16(24, inetChecksum(b.subarray(14, 34)));
  v.setUint16(34, srcPort);
  v.setUint16(36, TCP_PORT);
  v.setUint32(38, 0x01020304); // sequence number
  v.setUint32(42, 0);
  v.setUint8(46, 5 << 4); // data offset 5 words
  v.setUint8(47, 0x02); // SYN
  v.setUint16(48, 65535);
  v.setUint16(50, (pseudoSum(lab.nsmV4, lab.peerV4, 6, 20) + seedError) & 0xffff);
  v.setUint16(52, 0);
  link.commitPartial(len, 34, 16);
  link.flush();
}

Deno.test({
  name: "XdpLink commitPartial sends a TCP SYN a listening Linux socket answers with SYN-ACK; " +
    "a wrong seed gets no answer and counts TcpInCsumErrors",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab();
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off"]); // the peer verifies the sum
    using link = open(lab);
    const script = "import socket, time\n" +
      "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n" +
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n" +
      `s.bind(('0.0.0.0', ${TCP_PORT})); s.listen(8)\n` +
      "time.sleep(4)\n";
    const listener = lab.peer(["timeout", "10", "python3", "-c", script], true);
    await readyDelay();
    const before = await snmp(lab, "Tcp", "InCsumErrors");
    sendPartialSyn(link, lab, 41001, 0x100);
    sendPartialSyn(link, lab, 41002);
    const isSynAckTo = (f: Uint8Array, port: number): boolean =>
      f.length >= 54 && f[23] === 6 && ((f[36]! << 8) | f[37]!) === port &&
      (f[47]! & 0x12) === 0x12;
    const frames = await collect(link, (fs) => fs.some((f) => isSynAckTo(f, 41002)), 5000);
    assert.ok(frames.some((f) => isSynAckTo(f, 41002)), "SYN-ACK for the right seed");
    assert.ok(!frames.some((f) => isSynAckTo(f, 41001)), "no SYN-ACK for the wrong seed");
    const synAck = frames.find((f) => isSynAckTo(f, 41002))!;
    assert.equal(new DataView(synAck.buffer).getUint32(42), 0x01020305, "acks our ISN + 1");
    assert.equal(await snmp(lab, "Tcp", "InCsumErrors"), before + 1);
    await listener;
  },
});

Deno.test({
  name: "XdpLink commitPartial on MTU 9000 puts the request on the first descriptor of a " +
    "chain and the peer receives the 8000-byte datagram with a valid checksum",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab(9000);
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off"]);
    using link = open(lab);
    assert.equal(link.multiBuffer, true);
    assert.equal(link.txChecksum, "offload");
    const before = await snmp(lab, "Udp", "InCsumErrors");
    const got = udpReceiver(lab, 2, 4);
    await readyDelay();
    const body = new Uint8Array(8000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    body.set(new TextEncoder().encode("jumbo-wrong-seed"));
    sendPartialUdp(link, lab, 40011, body, 3);
    body.set(new TextEncoder().encode("jumbo-right-seed"));
    sendPartialUdp(link, lab, 40012, body);
    const lines = await flushUntil(link, got);
    assert.deepEqual(lines, ["8000 jumbo-right-seed"]);
    assert.equal(await snmp(lab, "Udp", "InCsumErrors"), before + 1);
    const s = link.stats();
    assert.equal(s.txMultiBuffer, 2);
    assert.equal(s.txChecksumOffloaded, 2);
    assert.equal(s.kernel.txInvalidDescs, 0);
  },
});

Deno.test({
  name: "XdpLink with txChecksumOffload 'off' completes commitPartial checksums itself",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab();
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off"]);
    using link = open(lab, { txChecksumOffload: "off" });
    assert.equal(link.txChecksum, "off");
    assert.equal(link.capabilities.txChecksumOffload, false);
    const got = udpReceiver(lab, 1, 4);
    await readyDelay();
    sendPartialUdp(link, lab, 40021, new TextEncoder().encode("js-completed"));
    assert.deepEqual(await flushUntil(link, got), ["12 js-completed"]);
    const s = link.stats();
    assert.equal(s.txChecksumCompleted, 1);
    assert.equal(s.txChecksumOffloaded, 0);
  },
});

Deno.test({
  name: "XdpLink commitPartial drops a request whose field lies outside the frame (counted) " +
    "and keeps transmitting",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab();
    using link = open(lab);
    const got = udpReceiver(lab, 1, 4);
    await readyDelay();
    const b = link.transmitBuffer(60)!;
    link.commitPartial(60, 34, 26); // field at 60..61: past the end
    assert.equal(link.stats().txChecksumBadRequest, 1);
    assert.equal(link.stats().txPackets, 0);
    assert.ok(b !== null);
    sendPartialUdp(link, lab, 40031, new TextEncoder().encode("after-bad"));
    assert.deepEqual(await flushUntil(link, got), ["9 after-bad"]);
    assert.equal(link.stats().kernel.txInvalidDescs, 0);
  },
});

Deno.test({
  name: "XdpLink commitPartial completes an IPv6 UDP checksum (csumStart 54) the peer accepts",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await openLab();
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off"]); // the peer verifies the sum
    using link = open(lab);
    const script = "import socket\n" +
      "r = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n" +
      `r.bind(('::', ${UDP_PORT})); r.settimeout(4)\n` +
      "d, a = r.recvfrom(65535)\n" +
      "print(len(d), d.decode(), a[0])\n";
    const got = lab.peer(["timeout", "9", "python3", "-c", script], true);
    await readyDelay();
    const payload = new TextEncoder().encode("v6-partial");
    const udpLen = 8 + payload.length;
    const len = 14 + 40 + udpLen;
    const b = link.transmitBuffer(len)!;
    assert.ok(b !== null);
    const v = new DataView(b.buffer, b.byteOffset, len);
    const mac = (m: string) => m.split(":").map((h) => parseInt(h, 16));
    b.set(mac(lab.peerMac), 0);
    b.set(mac(lab.nsmMac), 6);
    v.setUint16(12, 0x86dd);
    v.setUint32(14, 0x60000000);
    v.setUint16(18, udpLen);
    v.setUint8(20, 17);
    v.setUint8(21, 64);
    const src = new Uint8Array(16);
    const dst = new Uint8Array(16);
    src[0] = dst[0] = 0xfd;
    src[15] = 1; // fd00::1
    dst[15] = 2; // fd00::2
    b.set(src, 22);
    b.set(dst, 38);
    v.setUint16(54, 40041);
    v.setUint16(56, UDP_PORT);
    v.setUint16(58, udpLen);
    b.set(payload, 62);
    let sum = 17 + udpLen;
    for (let i = 0; i < 16; i += 2) {
      sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
    }
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    v.setUint16(60, sum);
    link.commitPartial(len, 54, 6);
    const r = await flushUntil(link, got);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "10 v6-partial fd00::1");
    assert.equal(link.stats().txChecksumOffloaded, 1);
  },
});
