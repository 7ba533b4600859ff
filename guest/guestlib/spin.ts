/**
 * The guest's adaptive spin before it sleeps on the doorbell.
 *
 * A sleeping guest costs the NSM a doorbell write to wake it and costs itself a wake-up (tens to
 * a hundred µs through the event loop); spinning a little first catches the NSM's next batch
 * when traffic is steady. But a spin that finds nothing burns a core the NSM may need (on a
 * pinned or shared machine the two compete), so the budget adapts: a spin that ended with work
 * doubles the next one (up to `maxNs`), a spin that ran out halves it, and below `minNs` it is
 * 0: an idle guest then sleeps at once and uses no CPU. While the budget is 0, every sleep that
 * was woken quickly (within `maxNs` of going to sleep) re-arms the spin at `minNs`: the
 * traffic came back.
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
  /** Largest budget, ns (default 50 µs). */
  maxNs?: number;
  /** First budget, ns (default 10 µs). */
  initialNs?: number;
  /** Called on every spinning pass that found nothing (default: nothing). */
  idle?: () => void;
}

/** Spin budget that grows while spins pay off and falls to 0 when they do not. */
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
    this.#max = options.maxNs ?? 50_000;
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
   * `sleptNs` = how long the sleep lasted (ignored when it did not sleep).
   */
  record(slept: boolean, sleptNs: number): void {
    if (!slept) {
      if (this.budgetNs > 0) this.hits++;
      this.budgetNs = Math.min(this.#max, Math.max(this.#min, this.budgetNs * 2));
      return;
    }
    if (this.budgetNs > 0) {
      this.misses++;
      const half = this.budgetNs / 2;
      this.budgetNs = half < this.#min ? 0 : half;
    } else if (sleptNs <= this.#max) {
      // Woken within a spin's reach of going to sleep: a spin would have caught it.
      this.budgetNs = this.#min;
    }
  }
}
