/**
 * A small seeded pseudo-random generator for the simulator: xoshiro128** (Blackman and Vigna)
 * seeded through splitmix32, so any 32-bit seed gives a well-mixed non-zero state.
 *
 * `fork(label)` derives an independent stream from this generator's *seed* and the label, not
 * from its current position, so the stream a link gets depends only on (root seed, link label):
 * adding a flow or a link, or drawing more numbers elsewhere, does not perturb another link's
 * loss pattern.
 *
 * @module
 */

/** The four 32-bit words of a stream's seed. */
type SeedKey = readonly [number, number, number, number];

/** 2^-32: maps a uint32 to [0, 1). */
const U32_TO_UNIT = 1 / 4294967296;

/** Advances a splitmix32 state; returns [nextState, output]. Kept tiny: only used to seed. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

/** FNV-1a over the UTF-16 code units of `label`. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Expands one 32-bit value into a 4-word key through splitmix32. */
function expand(seed: number): SeedKey {
  let s = seed | 0;
  let a: number, b: number, c: number, d: number;
  [s, a] = splitmix32(s);
  [s, b] = splitmix32(s);
  [s, c] = splitmix32(s);
  [s, d] = splitmix32(s);
  // xoshiro must not start from all zeros; splitmix32 output of four draws never is, but be sure.
  if ((a | b | c | d) === 0) a = 1;
  return [a, b, c, d];
}

/** A seeded xoshiro128** stream. Deterministic: the same seed yields the same numbers. */
export class Prng {
  /** The seed words this stream started from (what `fork` derives from). */
  readonly #key: SeedKey;
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Creates a stream from a 32-bit integer seed (other numbers are truncated to 32 bits). */
  constructor(seed: number | SeedKey = 0) {
    const key = typeof seed === "number" ? expand(seed) : seed;
    this.#key = key;
    this.#s0 = key[0] | 0;
    this.#s1 = key[1] | 0;
    this.#s2 = key[2] | 0;
    this.#s3 = key[3] | 0;
  }

  /** Next uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const s0 = this.#s0, s1 = this.#s1, s2 = this.#s2 ^ s0, s3 = this.#s3 ^ s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.#s1 = s1 ^ s2;
    this.#s0 = s0 ^ s3;
    this.#s2 = s2 ^ t;
    this.#s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** Next number uniformly distributed in [0, 1), with 32 bits of resolution. */
  next(): number {
    return this.nextU32() * U32_TO_UNIT;
  }

  /** True with probability `p` (always false for p <= 0, always true for p >= 1). */
  chance(p: number): boolean {
    return p > 0 && this.nextU32() * U32_TO_UNIT < p;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32. */
  nextInt(n: number): number {
    return Math.floor(this.nextU32() * U32_TO_UNIT * n);
  }

  /**
   * Derives an independent stream from this stream's seed and `label`. The result depends only
   * on (seed, label): not on how many numbers were drawn or which other forks were made.
   */
  fork(label: string): Prng {
    let s = hashLabel(label);
    const out: [number, number, number, number] = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      let z: number;
      [s, z] = splitmix32(s ^ this.#key[i]!);
      out[i] = z;
    }
    if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1;
    return new Prng(out);
  }
}
