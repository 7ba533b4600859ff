/**
 * The guest's adaptive spin before it sleeps on the doorbell.
 *
 * A sleeping guest costs the NSM a doorbell write to wake it and costs itself a wake-up (tens to
 * a hundred µs through the event loop); spinning first catches the NSM's answer when it comes
 * soon. A spin that finds nothing burns CPU, so the budget follows the waits it sees, as KVM's
 * halt polling does:
 * - a spin that found work keeps its budget;
 * - a wait that slept but ended within `maxNs` (spin included) would have been caught by a
 *   longer spin: the budget grows to cover it (the larger of twice the budget and 5/4 of the
 *   wait, at most `maxNs`, at least `minNs`);
 * - a wait longer than `maxNs` (idle traffic) halves the budget, and below `minNs` it is 0: an
 *   idle guest sleeps at once and uses no CPU.
 *
 * A request/response exchange whose answers come every ~100 µs thus settles on a spin that
 * catches them; the earlier policy (grow only on hits, from 2 µs) could never reach such a
 * budget and slept on every answer.
 *
 * Every empty pass of the spin calls `idle()` (GuestLib: `sched_yield(2)`): when the guest and
 * the NSM share a CPU, a spin that does not yield holds the CPU the NSM needs to produce the
 * very completion the guest waits for.
 *
 * @module
 */

/** Tunables of {@link AdaptiveSpin}. */
export interface AdaptiveSpinOptions {
  /** Smallest non-zero budget, ns (default 2 µs). */
  minNs?: number;
  /** Largest budget, ns (default 200 µs, KVM's default halt-poll ceiling). */
  maxNs?: number;
  /** First budget, ns (default 10 µs). */
  initialNs?: number;
  /** Called on every spinning pass that found nothing (default: nothing). */
  idle?: () => void;
}

/** Spin budget that follows the waits it sees: see the module comment. */
export class AdaptiveSpin {
  /** The budget for the next wait, ns (0 = sleep at once). */
  budgetNs: number;
  /** Spins that ended with work. */
  hits = 0;
  /** Spins that ran out and slept. */
  misses = 0;
  /** Empty spinning passes (calls of `idle`). */
  idlePasses = 0;
  readonly #min: number;
  readonly #max: number;
  readonly #idle: (() => void) | null;

  /** Builds the policy; see {@link AdaptiveSpinOptions} for the defaults. */
  constructor(options: AdaptiveSpinOptions = {}) {
    this.#min = options.minNs ?? 2_000;
    this.#max = options.maxNs ?? 200_000;
    this.budgetNs = Math.min(this.#max, options.initialNs ?? 10_000);
    this.#idle = options.idle ?? null;
  }

  /** One spinning pass found nothing: counts it and runs the `idle` option. */
  idle(): void {
    this.idlePasses++;
    if (this.#idle !== null) this.#idle();
  }

  /**
   * Records how the last wait ended: `slept` = it went to sleep (the spin ran out or was 0),
   * `waitedNs` = the whole wait, spin and sleep (ignored when it did not sleep).
   */
  record(slept: boolean, waitedNs: number): void {
    if (!slept) {
      if (this.budgetNs > 0) this.hits++;
      return;
    }
    if (this.budgetNs > 0) this.misses++;
    // Whole nanoseconds: a fractional budget made the field a heap number on every store.
    if (waitedNs <= this.#max) {
      const grown = Math.max(this.budgetNs * 2, waitedNs + (waitedNs >> 2), this.#min);
      this.budgetNs = grown > this.#max ? this.#max : Math.round(grown);
      return;
    }
    const half = Math.round(this.budgetNs / 2);
    this.budgetNs = half < this.#min ? 0 : half;
  }
}
