/**
 * Facts about a network interface read through ioctl(2) on a throwaway UDP socket: its MAC
 * address, MTU and driver name (the driver decides the default XDP attach mode: veth gets
 * generic/SKB mode).
 *
 * @module
 */

import { check, cString, ifNameToIndex, libc, struct } from "./libc.ts";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SIOCGIFMTU = 0x8921;
const SIOCGIFHWADDR = 0x8927;
const SIOCETHTOOL = 0x8946;
const ETHTOOL_GDRVINFO = 0x3;
/** sizeof(struct ifreq): name[16] then a 24-byte union. */
const IFREQ_LEN = 40;
const IFR_UNION = 16;
/** struct sockaddr inside ifr_hwaddr: u16 family, then the address bytes. */
const IFR_HWADDR_DATA = IFR_UNION + 2;
/** sizeof(struct ethtool_drvinfo): cmd u32, driver[32], version[32], fw_version[32], ... */
const DRVINFO_LEN = 196;
const DRVINFO_DRIVER = 4;
const IFNAMSIZ = 16;

/** What the driver needs to know about an interface. */
export interface NetdevInfo {
  /** Interface name. */
  readonly name: string;
  /** Interface index. */
  readonly index: number;
  /** Ethernet address, 6 bytes. */
  readonly mac: Uint8Array;
  /** Layer-3 MTU. */
  readonly mtu: number;
  /** Kernel driver name ("veth", "mlx5_core", ...), or "" when the driver does not say. */
  readonly driver: string;
}

function ifreq(name: string): Uint8Array<ArrayBuffer> {
  const req = struct(IFREQ_LEN);
  const n = cString(name);
  if (n.length > IFNAMSIZ) throw new RangeError(`interface name '${name}' exceeds 15 bytes`);
  req.set(n);
  return req;
}

/** Reads index, MAC, MTU and driver of `name`; throws `XdpNoDeviceError` when absent. */
export function netdevInfo(name: string): NetdevInfo {
  const index = ifNameToIndex(name);
  const c = libc();
  const fd = check(c.socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET)", "other");
  try {
    const hw = ifreq(name);
    check(c.ioctl(fd, BigInt(SIOCGIFHWADDR), hw), "ioctl(SIOCGIFHWADDR)", "other", name);
    const mac = hw.slice(IFR_HWADDR_DATA, IFR_HWADDR_DATA + 6);
    const mtuReq = ifreq(name);
    check(c.ioctl(fd, BigInt(SIOCGIFMTU), mtuReq), "ioctl(SIOCGIFMTU)", "other", name);
    const mtu = new DataView(mtuReq.buffer).getInt32(IFR_UNION, true);
    let driver = "";
    const info = struct(DRVINFO_LEN);
    new DataView(info.buffer).setUint32(0, ETHTOOL_GDRVINFO, true);
    const drv = ifreq(name);
    new DataView(drv.buffer).setBigUint64(
      IFR_UNION,
      Deno.UnsafePointer.value(Deno.UnsafePointer.of(info)),
      true,
    );
    if (c.ioctl(fd, BigInt(SIOCETHTOOL), drv) === 0) {
      const bytes = info.subarray(DRVINFO_DRIVER, DRVINFO_DRIVER + 32);
      const end = bytes.indexOf(0);
      driver = new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
    }
    return { name, index, mac, mtu, driver };
  } finally {
    c.close(fd);
  }
}
