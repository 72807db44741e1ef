/**
 * Running an async function over many items with a cap on how many run at once, keeping every
 * outcome: one failure never loses the others' results.
 */

/**
 * @template T, R
 * @typedef {{ ok: true, value: R } | { ok: false, error: unknown }} Settled
 */

/**
 * Call `work(item, index)` for every item, at most `concurrency` at a time.
 *
 * @template T, R
 * @param {readonly T[]} items
 * @param {number} concurrency  A positive integer.
 * @param {(item: T, index: number) => Promise<R>} work
 * @returns {Promise<Array<{ ok: true, value: R } | { ok: false, error: unknown }>>} One outcome
 *   per item, in the items' order.
 */
export async function settleAll(items, concurrency, work) {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, not ${concurrency}`);
  }
  const outcomes = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        outcomes[index] = { ok: true, value: await work(items[index], index) };
      } catch (error) {
        outcomes[index] = { ok: false, error };
      }
    }
  };
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, worker);
  await Promise.all(workers);
  return outcomes;
}
