/**
 * Keeps numeric fields in V8's double representation from the start.
 *
 * V8 gives an object field the representation of the first number stored in it: a small
 * integer (0, -1) makes a Smi field. When a sequence number later passes 2^31, a byte counter
 * 2 GiB, or an `Instant` (ns) 2.15 s, the field is generalised to double: the object's map is
 * replaced and every optimized function that used the old map deoptimizes ("wrong map") and
 * runs in lower tiers, which box numbers, until it is optimized again. A bulk sender hits this
 * three times in its first seconds (measured with `--trace-generalization`). Fields first
 * initialised with `AS_DOUBLE` (then set to their real start value in the constructor) are
 * double fields from the start, so their representation never changes.
 *
 * @module
 */

/** A non-integral number (a heap number to V8): the first value of a field meant to be double. */
export const AS_DOUBLE = 0.5;
