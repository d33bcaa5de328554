import assert from "node:assert/strict";
import {
  type Isolation,
  POOL_CLOSED_MESSAGE,
  VerifierPool,
  type VerifierPoolOptions,
} from "../../../verifiers/math/pool.ts";
import { verifyMath } from "../../../verifiers/math/verify.ts";
import type { MathVerdict } from "../../../verifiers/math/types.ts";

const MISBEHAVING = new URL("../../fixtures/misbehaving_verifier.ts", import.meta.url);
const ISOLATIONS: readonly Isolation[] = ["process", "worker"];

/** Runs `body` with a fresh pool and always closes it. */
async function withPool(
  options: VerifierPoolOptions,
  body: (pool: VerifierPool) => Promise<void>,
): Promise<void> {
  const pool = new VerifierPool(options);
  try {
    await body(pool);
  } finally {
    await pool.close();
  }
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

const TIMEOUT_VERDICT: MathVerdict = {
  equal: false,
  predAnswer: null,
  goldAnswer: null,
  reason: "timeout",
};

// Pairs whose verdicts must come back from a verifier exactly as verifyMath() gives them here.
const PAIRS: readonly { pred: string; gold: string }[] = [
  { pred: "42", gold: "42" },
  { pred: "41", gold: "42" },
  { pred: "The answer is $\\boxed{\\frac{1}{2}}$.", gold: "0.5" },
  { pred: "<think>2+2=4</think>4", gold: "4" },
  { pred: "#### 1,234", gold: "1234" },
  { pred: "x = 3", gold: "3" },
];

for (const isolation of ISOLATIONS) {
  Deno.test(`VerifierPool.verify() returns verifyMath()'s verdict (${isolation})`, async () => {
    await withPool({ isolation, size: 1 }, async (pool) => {
      assert.equal((await pool.verify("42", "42")).equal, true);
      assert.equal((await pool.verify("41", "42")).equal, false);
      for (const { pred, gold } of PAIRS) {
        assert.deepEqual(await pool.verify(pred, gold), verifyMath(pred, gold));
      }
    });
  });

  Deno.test(`VerifierPool.verifyMany() keeps the input order (${isolation})`, async () => {
    // 2 verifiers, batches of 3: answers arrive interleaved but come back in order.
    const pairs = Array.from({ length: 40 }, (_, i) => ({
      pred: `${i}`,
      gold: `${i % 3 === 0 ? i : i + 1}`,
    }));
    await withPool({ isolation, size: 2, batchSize: 3 }, async (pool) => {
      const verdicts = await pool.verifyMany(pairs);
      assert.deepEqual(verdicts, pairs.map((p) => verifyMath(p.pred, p.gold)));
      assert.equal(verdicts.filter((v) => v.equal).length, 14); // i = 0, 3, …, 39
      assert.equal(pool.stats().started, 2);
    });
  });

  Deno.test(`VerifierPool.verify() answers a throw as a verifier error (${isolation})`, async () => {
    await withPool({ isolation, size: 1, workerUrl: MISBEHAVING }, async (pool) => {
      assert.deepEqual(await pool.verify("throw", "1"), {
        equal: false,
        predAnswer: null,
        goldAnswer: null,
        reason: "verifier error: bad input",
      });
      assert.equal((await pool.verify("5", "5")).equal, true);
      assert.equal(pool.stats().started, 1); // a throw does not cost the verifier
    });
  });

  Deno.test(`VerifierPool.verify() retries a crash once, then answers it (${isolation})`, async () => {
    await withPool({ isolation, size: 1, batchSize: 1, workerUrl: MISBEHAVING }, async (pool) => {
      // "crash" kills every verifier that runs it: run once more, then a verifier error.
      const verdict = await pool.verify("crash", "1");
      assert.equal(verdict.equal, false);
      assert.equal(
        verdict.reason,
        isolation === "process"
          ? "verifier error: the verifier process exited with code 3"
          : "verifier error: Error: worker crashed",
      );
      assert.equal((await pool.verify("5", "5")).equal, true);
      assert.deepEqual(pool.stats(), {
        workers: 1,
        queued: 0,
        running: 0,
        started: 3,
        timeouts: 0,
        crashes: 2,
        retries: 1,
      });
    });
  });

  Deno.test(`VerifierPool.killWorker() mid-batch loses no verdict (${isolation})`, async () => {
    // Each batch of 4 starts with a 300 ms spin, so the killed verifier is mid-batch.
    const pairs = Array.from({ length: 24 }, (_, i) => ({
      pred: i % 4 === 0 ? "spin:300" : `${i}`,
      gold: `${i % 3 === 0 ? i : i + 1}`,
    }));
    const expected = pairs.map((p) =>
      p.pred.startsWith("spin:")
        ? { equal: false, predAnswer: null, goldAnswer: null, reason: "spun" }
        : verifyMath(p.pred, p.gold)
    );
    await withPool(
      { isolation, size: 2, batchSize: 4, timeoutMs: 5000, workerUrl: MISBEHAVING },
      async (pool) => {
        await pool.warmUp();
        const pending = pool.verifyMany(pairs);
        assert.equal(pool.stats().running, 8, "both verifiers hold a batch");
        assert.equal(pool.killWorker(0), true);
        const verdicts = await pending;
        assert.deepEqual(verdicts, expected);
        assert.equal(verdicts.filter((v) => v.reason === "spun").length, 6);
        const stats = pool.stats();
        assert.equal(stats.crashes, 1);
        assert.equal(stats.retries, 1, "the pair in progress ran again");
        assert.equal(stats.started, 3);
        assert.equal(stats.workers, 2);
        assert.equal(stats.timeouts, 0);
      },
    );
  });

  Deno.test(`VerifierPool.verify() passes the merged options (${isolation})`, async () => {
    await withPool({
      isolation,
      size: 1,
      workerUrl: MISBEHAVING,
      verifyOptions: { percent: "strict", relativeTolerance: 1e-2 },
    }, async (pool) => {
      const own = await pool.verify("echo-options", "", {
        relativeTolerance: 1e-6,
        timeoutMs: 900,
      });
      assert.deepEqual(JSON.parse(own.reason), { percent: "strict", relativeTolerance: 1e-6 });
      const defaults = await pool.verify("echo-options", "");
      assert.deepEqual(JSON.parse(defaults.reason), { percent: "strict", relativeTolerance: 1e-2 });
    });
  });

  Deno.test(`VerifierPool.verify() rejects when no verifier can start (${isolation})`, async () => {
    const workerUrl = new URL("../../fixtures/no_such_verifier.ts", import.meta.url);
    await withPool({ isolation, size: 1, workerUrl }, async (pool) => {
      // The message is Deno's own: "Module not found …" (a worker under `deno test` says
      // "Type checking failed").
      await assert.rejects(
        pool.verify("1", "1"),
        new RegExp(`^Error: Cannot start a verifier ${isolation}: .`),
      );
      await assert.rejects(pool.warmUp(), /Cannot start a verifier/);
    });
  });
}

Deno.test("VerifierPool.verify() times out an endless loop, kills it and goes on", async () => {
  await withPool(
    { isolation: "process", size: 1, timeoutMs: 300, workerUrl: MISBEHAVING },
    async (pool) => {
      await pool.warmUp();
      const { value, ms } = await timed(() => pool.verify("hang", "1"));
      // "hang" never answers: only the timeout can have ended the call.
      assert.deepEqual(value, TIMEOUT_VERDICT);
      assert.ok(ms >= 300, `took ${ms} ms`);
      assert.equal((await pool.verify("7", "7")).equal, true);
      // The looping verifier was killed and a new one answered "7".
      assert.equal(pool.stats().timeouts, 1);
      assert.equal(pool.stats().started, 2);
      assert.equal(pool.stats().workers, 1);
      // A batch with a hang in the middle: the pairs after it go to the replacement.
      const verdicts = await pool.verifyMany([
        { pred: "1", gold: "1" },
        { pred: "hang", gold: "2" },
        { pred: "3", gold: "3" },
        { pred: "4", gold: "5" },
      ]);
      assert.deepEqual(verdicts, [
        verifyMath("1", "1"),
        TIMEOUT_VERDICT,
        verifyMath("3", "3"),
        verifyMath("4", "5"),
      ]);
      assert.deepEqual(pool.stats(), {
        workers: 1,
        queued: 0,
        running: 0,
        started: 3,
        timeouts: 2,
        crashes: 0,
        retries: 0,
      });
    },
  );
});

Deno.test("VerifierPool.verify() times out a busy Web Worker and goes on", async () => {
  // A Web Worker cannot be stopped while it runs JavaScript (Deno 2.9): the abandoned one
  // spins until its 1.2 s are over. The call does not wait for it: it answers "timeout",
  // not the "spun" the worker gives once its spin is over.
  await withPool(
    { isolation: "worker", size: 1, timeoutMs: 200, workerUrl: MISBEHAVING },
    async (pool) => {
      await pool.warmUp();
      const { value, ms } = await timed(() => pool.verify("spin:1200", "1"));
      assert.deepEqual(value, TIMEOUT_VERDICT);
      assert.ok(ms >= 200, `took ${ms} ms`);
      assert.equal((await pool.verify("7", "7")).equal, true);
      assert.equal(pool.stats().timeouts, 1);
      assert.equal(pool.stats().started, 2);
    },
  );
});

Deno.test("VerifierPool.verify() answers a verifier that runs out of memory", async () => {
  await withPool(
    { isolation: "process", size: 1, memoryLimitMb: 32, timeoutMs: 10_000, workerUrl: MISBEHAVING },
    async (pool) => {
      const verdict = await pool.verify("oom", "1");
      assert.match(verdict.reason, /^verifier error: the verifier process exited with .*memory/);
      assert.equal((await pool.verify("7", "7")).equal, true);
      assert.equal(pool.stats().crashes, 2, "run out of memory twice: tried, then retried");
      assert.equal(pool.stats().retries, 1);
    },
  );
});

Deno.test("VerifierPool.verify() does not time out a reply held up by a busy caller", async () => {
  await withPool({ isolation: "worker", size: 1, timeoutMs: 100 }, async (pool) => {
    await pool.warmUp();
    const pending = pool.verify("5", "5");
    const end = performance.now() + 400; // the caller's thread is busy well past the limit
    while (performance.now() < end) {
      // busy
    }
    assert.deepEqual(await pending, verifyMath("5", "5"));
    assert.equal(pool.stats().timeouts, 0);
  });
});

Deno.test("VerifierPool.verify() answers pathological input with verifyMath()'s verdict", async () => {
  const cases: [string, string, string][] = [
    ["a power tower", "10^{10^{10}}", "1"],
    ["a power tower, boxed", "\\boxed{10^{10^{10^{10}}}}", "10^{10^{10^{10}}}"],
    ["100 000 characters", "9".repeat(100_000), "9"],
    ["100 000 characters of LaTeX", "\\frac{1}{2}+".repeat(8_334), "1"],
    ["10 000 nested braces", `${"{".repeat(10_000)}1${"}".repeat(10_000)}`, "1"],
    ["10 000 nested boxes", `${"\\boxed{".repeat(10_000)}1${"}".repeat(10_000)}`, "1"],
    ["unbalanced braces", "\\frac{1}{2", "\\frac{1}{2}"],
    ["unbalanced boxed", "\\boxed{\\frac{1}{2", "0.5"],
  ];
  // A timeout far beyond any of these on a busy machine: the verdicts must be the verifier's
  // own (the same as in this process), never a timeout or a verifier error.
  await withPool({ size: 1, timeoutMs: 60_000 }, async (pool) => {
    await pool.warmUp();
    for (const [name, pred, gold] of cases) {
      assert.deepEqual(await pool.verify(pred, gold), verifyMath(pred, gold), name);
      assert.deepEqual(await pool.verify(gold, pred), verifyMath(gold, pred), `${name} as gold`);
    }
    assert.equal((await pool.verify("42", "42")).equal, true);
    const stats = pool.stats();
    assert.equal(stats.timeouts, 0);
    assert.equal(stats.crashes, 0);
    assert.equal(stats.started, 1, "one verifier answered everything");
  });
});

Deno.test("VerifierPool.close() rejects pending calls and later ones", async () => {
  const pool = new VerifierPool({
    isolation: "process",
    size: 1,
    batchSize: 1,
    timeoutMs: 30_000,
    workerUrl: MISBEHAVING,
  });
  await pool.warmUp();
  const running = assert.rejects(pool.verify("hang", "1"), { message: POOL_CLOSED_MESSAGE });
  const queued = assert.rejects(pool.verify("2", "2"), { message: POOL_CLOSED_MESSAGE });
  assert.deepEqual(pool.stats(), {
    workers: 1,
    queued: 1,
    running: 1,
    started: 1,
    timeouts: 0,
    crashes: 0,
    retries: 0,
  });
  await pool.close();
  await running;
  await queued;
  await assert.rejects(pool.verify("1", "1"), { message: POOL_CLOSED_MESSAGE });
  await pool.close(); // harmless
  assert.equal(pool.stats().workers, 0);
});

Deno.test("VerifierPool.warmUp() rejects when the pool closes first", async () => {
  const pool = new VerifierPool({ isolation: "process", size: 2 });
  const warming = assert.rejects(pool.warmUp(), { message: POOL_CLOSED_MESSAGE });
  await pool.close();
  await warming;
});

Deno.test("VerifierPool supports await using", async () => {
  let outer: VerifierPool;
  {
    await using pool = new VerifierPool({ isolation: "worker", size: 1 });
    outer = pool;
    assert.equal((await pool.verify("3", "3")).equal, true);
  }
  await assert.rejects(outer.verify("1", "1"), { message: POOL_CLOSED_MESSAGE });
});

Deno.test("VerifierPool.killWorker() kills nothing without a ready verifier", async () => {
  await withPool({ isolation: "process", size: 1 }, async (pool) => {
    assert.equal(pool.killWorker(), false, "no verifier started yet");
    assert.throws(() => pool.killWorker(-1), {
      name: "RangeError",
      message: "Cannot kill a verifier: index must be an integer >= 0: current value is -1",
    });
    await pool.warmUp();
    assert.equal(pool.killWorker(1), false, "only one verifier");
    // An idle verifier: it is replaced and the next call still gets a right verdict.
    assert.equal(pool.killWorker(), true);
    assert.deepEqual(await pool.verify("2", "2"), verifyMath("2", "2"));
    assert.equal(pool.stats().crashes, 1);
    assert.equal(pool.stats().retries, 0);
    assert.equal(pool.stats().started, 2);
  });
});

Deno.test("VerifierPool() checks its options", () => {
  assert.throws(() => new VerifierPool({ size: 0 }), {
    name: "RangeError",
    message: 'Invalid verifier pool option "size": must be an integer >= 1: current value is 0',
  });
  assert.throws(() => new VerifierPool({ timeoutMs: -1 }), {
    name: "RangeError",
    message:
      'Invalid verifier pool option "timeoutMs": must be a finite number > 0: current value is -1',
  });
  assert.throws(() => new VerifierPool({ isolation: "thread" as Isolation }), {
    name: "RangeError",
    message:
      'Invalid verifier pool option "isolation": must be "process" or "worker": current value is "thread"',
  });
});

Deno.test("VerifierPool.verify() rejects a pair that is not two strings", async () => {
  await withPool({ size: 1 }, async (pool) => {
    await assert.rejects(pool.verify("1", null as unknown as string), {
      name: "TypeError",
      message: 'Cannot verify: "gold" must be a string: current value is null',
    });
    await assert.rejects(pool.verify("1", "1", { timeoutMs: 0 }), { name: "RangeError" });
    assert.equal(pool.stats().started, 0);
  });
});
