/**
 * The AF_XDP driver: `XdpLink` (a `Link` over AF_XDP with zero-copy receive and transmit into
 * UMEM), `TapLink` (the fallback over /dev/net/tun), the pieces it is built from (libc FFI table, BPF program/map/link, UMEM, rings,
 * sockets), the typed errors, and the veth/netns `Lab` used by tests and `deno task lab`.
 *
 * @module
 */

export {
  XDP_PACKET_HEADROOM,
  XdpLink,
  type XdpLinkOptions,
  type XdpLinkStats,
} from "./xdp_link.ts";
export {
  IFF_NO_PI,
  IFF_TAP,
  randomMac,
  TapLink,
  type TapLinkOptions,
  type TapLinkStats,
  TUNSETIFF,
} from "./tap.ts";
export {
  type AttachMode,
  BPF_F_XDP_HAS_FRAGS,
  BpfVerifierError,
  createXdpLink,
  createXskMap,
  encodeInsn,
  loadXdpProgram,
  mapDelete,
  mapUpdate,
  redirectProgram,
  XdpProgram,
  type XdpProgramOptions,
} from "./bpf.ts";
export {
  allowedCpus,
  type KickCounters,
  kickUntilDrained,
  ThreadKicker,
  type TxRingMapping,
} from "./kick.ts";
export {
  type BindMode,
  DEFAULT_TX_BUDGET,
  XDP_MAX_TX_SKB_BUDGET,
  XDP_PKT_CONTD,
  XDP_USE_SG,
  type XdpStatistics,
  XdpTxChecksumUnsupportedError,
  XskOptionError,
  XskSocket,
  type XskSocketOptions,
} from "./socket.ts";
export {
  completeChecksum,
  TX_METADATA_LEN,
  TXMD_CSUM_OFFSET,
  TXMD_CSUM_START,
  TXMD_FLAGS,
  validChecksumRequest,
  writeChecksumRequest,
  XDP_TX_METADATA,
  XDP_TXMD_FLAGS_CHECKSUM,
  XDP_TXMD_FLAGS_TIMESTAMP,
  XDP_UMEM_TX_METADATA_LEN,
  XDP_UMEM_TX_SW_CSUM,
} from "./tx_metadata.ts";
export { FrameOwner, FramePool, type HugepageMode, Umem, UmemOptionError } from "./umem.ts";
export { ConsumerRing, ProducerRing, RingLayoutError, type RingOffsets } from "./ring.ts";
export { type NetdevInfo, netdevInfo } from "./netdev.ts";
export {
  errno,
  libc,
  LIBC_SYMBOLS,
  raiseMemlockLimit,
  type SyscallContext,
  syscallError,
  XdpAlreadyAttachedError,
  XdpError,
  XdpMemlockError,
  XdpNoDeviceError,
  XdpPermissionError,
  XdpQueueBusyError,
  XdpSyscallError,
  XdpUnsupportedError,
  XdpZeroCopyUnsupportedError,
} from "./libc.ts";
export {
  type CommandResult,
  Lab,
  LAB_NSM_V4,
  LAB_NSM_V6,
  LAB_PEER_V4,
  LAB_PEER_V6,
  LAB_V4_PREFIX,
  LAB_V6_PREFIX,
  LabCommandError,
  type LabOptions,
  run,
} from "./lab.ts";
