import assert from "node:assert/strict";
import { Rng } from "../../util/rng.ts";

Deno.test("Rng.nextUint32() matches the xoshiro128** reference for state [1, 2, 3, 4]", () => {
  // Values from the reference C implementation (Blackman & Vigna).
  const rng = Rng.fromState([1, 2, 3, 4]);
  const out = Array.from({ length: 6 }, () => rng.nextUint32());
  assert.deepEqual(out, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

Deno.test("Rng() gives known first values for seed 42", () => {
  const rng = new Rng(42);
  const out = Array.from({ length: 5 }, () => rng.nextUint32());
  assert.deepEqual(out, [660444221, 3652823732, 77672526, 910233633, 2297337756]);
  assert.equal(new Rng(42).next(), 660444221 / 2 ** 32);
});

Deno.test("Rng() gives different streams for different seeds, including large and negative ones", () => {
  const firsts = [0, 1, 2, -1, 2 ** 32, 2 ** 40 + 1].map((seed) => new Rng(seed).nextUint32());
  assert.equal(new Set(firsts).size, firsts.length);
  assert.throws(() => new Rng(1.5), RangeError);
  assert.throws(() => new Rng(Number.NaN), RangeError);
});

Deno.test("Rng.next() is roughly uniform on [0, 1)", () => {
  const rng = new Rng(123);
  const bins = new Array<number>(10).fill(0);
  let sum = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    sum += x;
    bins[Math.floor(x * 10)]! += 1;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
  // Expected 2000 per bin, standard deviation about 42.
  for (const count of bins) assert.ok(Math.abs(count - 2000) < 200, `bin count ${count}`);
});

Deno.test("Rng.int() covers the inclusive range uniformly and rejects bad bounds", () => {
  const rng = new Rng(7);
  const counts = new Map<number, number>();
  for (let i = 0; i < 6000; i++) {
    const v = rng.int(1, 6);
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [1, 2, 3, 4, 5, 6]);
  for (const count of counts.values()) assert.ok(Math.abs(count - 1000) < 150, `count ${count}`);
  assert.equal(rng.int(5, 5), 5);
  assert.throws(() => rng.int(3, 2), RangeError);
  assert.throws(() => rng.int(0.5, 2), RangeError);
  assert.throws(() => rng.int(0, 2 ** 33), RangeError);
});

Deno.test("Rng.pick() and Rng.shuffle() are deterministic and keep elements", () => {
  const a = new Rng(9);
  const b = new Rng(9);
  const items = ["x", "y", "z"];
  assert.equal(a.pick(items), b.pick(items));
  const shuffled = a.shuffle([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(shuffled, b.shuffle([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual([...shuffled].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.notDeepEqual(shuffled, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.throws(() => a.pick([]), RangeError);
});

Deno.test("Rng.normal() has mean 0 and standard deviation 1", () => {
  const rng = new Rng(2024);
  const n = 20000;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const x = rng.normal();
    assert.ok(Number.isFinite(x));
    sum += x;
    sumSq += x * x;
  }
  const mean = sum / n;
  const std = Math.sqrt(sumSq / n - mean * mean);
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.03, `std ${std}`);
  const shifted = new Rng(5).normal(10, 2);
  assert.equal(shifted, 10 + 2 * new Rng(5).normal());
});

Deno.test("Rng.fork() is deterministic per label and does not advance the parent", () => {
  const parent = new Rng(42);
  const before = parent.getState();
  const a1 = parent.fork("a").nextUint32();
  assert.deepEqual(parent.getState(), before);
  assert.equal(parent.fork("a").nextUint32(), a1);
  assert.equal(a1, 3622492842);
  assert.equal(parent.fork("b").nextUint32(), 310601514);
  // The forked stream differs from the parent's own stream.
  assert.notEqual(a1, parent.clone().nextUint32());
});

Deno.test("Rng.getState() and Rng.setState() resume a stream exactly", () => {
  const rng = new Rng(99);
  for (let i = 0; i < 10; i++) rng.next();
  const saved = JSON.parse(JSON.stringify(rng.getState()));
  const expected = [rng.next(), rng.int(0, 100), rng.normal()];
  const resumed = Rng.fromState(saved);
  assert.deepEqual([resumed.next(), resumed.int(0, 100), resumed.normal()], expected);
  rng.setState(saved);
  assert.equal(rng.next(), expected[0]);
  assert.throws(() => rng.setState([0, 0, 0, 0]), RangeError);
  assert.throws(() => rng.setState([1, 2, 3, 2 ** 32]), RangeError);
  assert.throws(
    () => rng.setState([1, 2, 3] as unknown as [number, number, number, number]),
    TypeError,
  );
});
