/**
 * Timing helpers shared by the benchmark scripts.
 *
 * @module
 */

/** The median of `xs` (the upper one for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time of `repeats` runs of `f` in seconds, after one warm-up run. */
export async function timeIt(f: () => Promise<void>, repeats: number): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}
