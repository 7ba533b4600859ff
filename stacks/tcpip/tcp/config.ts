/**
 * Stack-wide TCP settings and per-socket options, with Linux-like defaults.
 *
 * @module
 */

import { type Duration, MILLISECOND, SECOND } from "../../time.ts";

/** Per-socket options (setsockopt equivalents). */
export interface TcpSocketOptions {
  /** TCP_NODELAY: disable Nagle (RFC 896). */
  noDelay: boolean;
  /** SO_KEEPALIVE. */
  keepAlive: boolean;
  /** TCP_KEEPIDLE: idle time before the first probe. */
  keepIdle: Duration;
  /** TCP_KEEPINTVL: time between probes. */
  keepInterval: Duration;
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped. */
  keepCount: number;
  /** SO_SNDBUF in bytes. */
  sendBufferSize: number;
  /** SO_RCVBUF in bytes (sets the window scale at connect/listen time). */
  receiveBufferSize: number;
  /**
   * Let the send buffer grow past `sendBufferSize` to twice the congestion window, up to
   * `TcpConfig.sendBufferMax` (Linux's tcp_sndbuf_expand). Setting `sendBufferSize` on a socket
   * turns it off for that socket, as SO_SNDBUF does in Linux.
   */
  sendBufferAuto: boolean;
  /**
   * Let the receive buffer grow past `receiveBufferSize`, up to `TcpConfig.receiveBufferMax`,
   * while the application reads what the window lets through each round trip (Linux's
   * tcp_moderate_rcvbuf, after Dynamic Right-Sizing). Setting `receiveBufferSize` on a socket
   * turns it off for that socket, as SO_RCVBUF does in Linux.
   */
  receiveBufferAuto: boolean;
  /** SO_LINGER in seconds; -1 off, 0 = close() aborts with RST. */
  linger: number;
  /** SO_REUSEADDR: bind over TIME_WAIT leftovers. */
  reuseAddress: boolean;
  /** TCP_CONGESTION: registry name of the congestion control. */
  congestionControl: string;
}

/** Stack-wide settings (sysctl equivalents). */
export interface TcpConfig {
  /** Maximum segment lifetime; TIME_WAIT lasts 2*MSL. Linux uses 60 s for TIME_WAIT. */
  msl: Duration;
  /** Delayed ACK timer (RFC 9293 3.8.6.3 allows up to 500 ms; Linux uses 40 ms). */
  delayedAckTimeout: Duration;
  /** Segments acked at once at the start of a connection (Linux quick-ack mode). */
  quickAckSegments: number;
  /** Send and accept RFC 7323 timestamps. */
  timestamps: boolean;
  /** Offer and accept SACK (RFC 2018). */
  sack: boolean;
  /** Offer and accept window scaling (RFC 7323). */
  windowScaling: boolean;
  /** Offer and accept ECN (RFC 3168). */
  ecn: boolean;
  /** SYN retransmissions before connect() fails. */
  synRetries: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped. */
  synAckRetries: number;
  /** Data retransmission timeouts in a row before the connection fails. */
  maxRetries: number;
  /** Challenge ACKs per second for the whole stack (RFC 5961 7). */
  challengeAckLimit: number;
  /** How long an orphaned FIN_WAIT_2 connection lingers (Linux tcp_fin_timeout). */
  finWait2Timeout: Duration;
  /** Smallest persist (zero-window probe) interval. */
  persistMin: Duration;
  /** Largest persist interval. */
  persistMax: Duration;
  /** Lower bound for the engine's RTO. */
  minRto: Duration;
  /** Initial RTO before an RTT sample. */
  initialRto: Duration;
  /** Default socket options. */
  socket: TcpSocketOptions;
  /**
   * Ceiling of send-buffer auto-tuning, bytes (Linux's tcp_wmem[2]); 0 (default) keeps every
   * send buffer at its `sendBufferSize`.
   */
  sendBufferMax: number;
  /**
   * Ceiling of receive-buffer auto-tuning, bytes (Linux's tcp_rmem[2]); 0 (default) keeps every
   * receive buffer at its `receiveBufferSize`. A connection that may grow offers the window
   * scale for this size. Fixed 256 KiB buffers hold a flow to 256 KiB per round trip: 100
   * Mbit/s at 20 ms.
   */
  receiveBufferMax: number;
  /**
   * Bytes of auto-tuning growth all connections together may hold (Linux bounds its buffers
   * with tcp_mem); buffers stop growing while it is used up, and a connection gives its growth
   * back at TIME-WAIT or CLOSED. Default: no bound.
   */
  bufferTuningBudget: number;
  /** Ephemeral port range, inclusive. */
  ephemeralLow: number;
  /** Upper end of the ephemeral range. */
  ephemeralHigh: number;
  /**
   * When every ephemeral port towards a destination is taken, `connect()` may reuse one whose
   * connection has been in TIME-WAIT for at least a second and used timestamps (Linux's
   * tcp_tw_reuse = 1; RFC 6191: the peer tells the new incarnation apart by its larger
   * timestamps, and its ISN starts above the old SND.NXT, RFC 1122 4.2.2.13).
   */
  timeWaitReuse: boolean;
  /**
   * Most connections kept in TIME-WAIT at once (Linux's tcp_max_tw_buckets): one more closes
   * at once instead, counted in `TcpCounters.timeWaitOverflows`. A TIME-WAIT connection keeps
   * its TCB (about 5 KB of heap); at 7,000 closes a second and 2 MSL = 60 s that was 2.4 GB
   * without a bound.
   */
  maxTimeWait: number;
  /** Largest SYN queue per listener (half-open connections); SYN cookies beyond it. */
  synQueueMax: number;
  /** Use SYN cookies when the SYN queue is full (else drop the SYN). */
  synCookies: boolean;
  /** Pace transmissions at the engine's rate even when the CC sets none (Linux fq-like). */
  pacing: boolean;
  /**
   * When a read opens the receive window, send a window-update ACK at once:
   * "every-mss" (default) whenever the window grew by min(RCV.BUFF/2, MSS) (RFC 9293
   * 3.8.6.2.2), which for a reader that keeps up means an ACK after every read;
   * "half-window" only when the window still open at the sender has fallen to half of the
   * most we offer and would at least double (Linux tcp_cleanup_rbuf), leaving the ACK clock
   * (every second segment) to carry the window otherwise: half the ACKs of a bulk transfer.
   */
  windowUpdateOnRead: "every-mss" | "half-window";
  /**
   * Defer the ACK owed under the every-second-segment rule to the end of the receive batch
   * (the next `TcpStack.poll`, which the interface runs after each batch; `pollAt()` reports
   * it due at once): one ACK per connection per batch, as Linux sends after GRO merged the
   * batch. ACKs for out-of-order data, filled holes, FIN, ECN changes, quick-ack mode and
   * window updates still go at once. Off by default: fewer, stretched ACKs change the ACK
   * clock the congestion-control tests were calibrated with.
   */
  ackCoalescing: boolean;
  /**
   * The largest application write that crosses the end of a send buffer's storage without a
   * view of it being made (garbage per lap of the ring), paid for with as many extra bytes of
   * storage per sending connection. 16 KiB: the NSM's chunk size, so a guest's SENDs never
   * allocate at the wrap.
   */
  sendSpillBytes: number;
}

/** Default socket options. */
export function defaultSocketOptions(): TcpSocketOptions {
  return {
    noDelay: false,
    keepAlive: false,
    keepIdle: 7200 * SECOND,
    keepInterval: 75 * SECOND,
    keepCount: 9,
    sendBufferSize: 256 * 1024,
    receiveBufferSize: 256 * 1024,
    sendBufferAuto: true,
    receiveBufferAuto: true,
    linger: -1,
    reuseAddress: false,
    congestionControl: "reno",
  };
}

/** Default stack settings. */
export function defaultTcpConfig(): TcpConfig {
  return {
    msl: 30 * SECOND,
    sendSpillBytes: 16384,
    delayedAckTimeout: 40 * MILLISECOND,
    quickAckSegments: 8,
    timestamps: true,
    sack: true,
    windowScaling: true,
    ecn: true,
    synRetries: 6,
    synAckRetries: 5,
    maxRetries: 15,
    challengeAckLimit: 1000,
    finWait2Timeout: 60 * SECOND,
    persistMin: 200 * MILLISECOND,
    persistMax: 60 * SECOND,
    minRto: 200 * MILLISECOND,
    initialRto: SECOND,
    socket: defaultSocketOptions(),
    sendBufferMax: 0,
    receiveBufferMax: 0,
    bufferTuningBudget: Number.POSITIVE_INFINITY,
    ephemeralLow: 32768,
    ephemeralHigh: 60999,
    timeWaitReuse: true,
    maxTimeWait: 32768,
    synQueueMax: 256,
    synCookies: true,
    pacing: false,
    windowUpdateOnRead: "every-mss",
    ackCoalescing: false,
  };
}
