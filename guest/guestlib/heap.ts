/**
 * The young generation a GuestLib program needs for a data path without collections. GuestLib
 * allocates about 1 B per 16 KB chunk a bulk reader receives (the pump's macrotasks, view
 * misses; bench/e2e/guest_alloc.ts), and nothing measurable sending. With V8's default young
 * generation (1 MB semi-spaces, grown only when many objects survive) that trickle, on top of
 * what the program's start-up left there, made a scavenge about every 10-25 s of a 4 Gbit/s
 * receive (gc_nsm.ts --trace-guest: 1, 1, 0 in three 10 s windows); with 16 MB semi-spaces
 * none came in a whole 15 s run, start-up included, nor in a 40 s one. The flags are the
 * program's to choose: `deno task nkperf` and `deno task nkcat` pass these.
 *
 * @module
 */

/** Young-generation size per semi-space for GuestLib programs, MB. */
export const GUEST_SEMI_SPACE_MB = 16;

/**
 * The V8 flags of a GuestLib program with a bulk data path, as a `deno run` argument.
 * `--no-memory-reducer`: V8's memory reducer takes an allocation rate this low for an idle
 * program and runs full mark-compacts to shrink the heap, under full load: two in a 40 s
 * receive, 30 s in (3.6 ms, and marking steps up to 4.1 ms) and 39 s in (2.5 ms), as the NSM
 * saw before it got the same flag (nsm/heap.ts).
 */
export const GUEST_V8_FLAGS =
  `--v8-flags=--min-semi-space-size=${GUEST_SEMI_SPACE_MB},--no-memory-reducer`;
