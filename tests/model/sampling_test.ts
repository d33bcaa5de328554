import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { Transformer } from "../../model/transformer.ts";
import { makeShortContextModel, maxAbsDiff, SHORT_CONTEXT_CONFIG } from "../helpers.ts";
import { generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";

await initBackend("wasm");

/** A context of 32 tokens, so a long prompt leaves little room. */
const CONFIG = SHORT_CONTEXT_CONFIG;

/** A {@link SHORT_CONTEXT_CONFIG} model with loud weights. */
function model(seed: number): Transformer {
  return makeShortContextModel(seed);
}

/** A prompt of `n` ids in [1, vocab), from `rng`. */
function prompt(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => 1 + Math.floor(rng.next() * (CONFIG.vocab_size - 1)));
}

Deno.test("generate() gives each row its own budget, not the longest prompt's", async () => {
  const m = model(13);
  const rng = new Rng(4);
  const long = prompt(rng, 28);
  const prompts = [prompt(rng, 5), long, prompt(rng, 5), prompt(rng, 5)];
  const before = tf.memory().numTensors;
  // An id beyond the vocabulary is never produced: only the budgets end these rows.
  const never = CONFIG.vocab_size;
  const gens = await generate(m, prompts, {
    maxNewTokens: 10,
    greedy: true,
    stopIds: [never],
    padId: 0,
    rng: new Rng(1),
  });
  assert.deepEqual(
    gens.map((g) => [g.tokens.length, g.logprobs.length, g.finishReason]),
    [[10, 10, "length"], [4, 4, "length"], [10, 10, "length"], [10, 10, "length"]],
  );
  assert.equal(tf.memory().numTensors, before, "generate() left tensors behind");
  m.dispose();
});

Deno.test("generate() names the row of a prompt that leaves no room in the context", async () => {
  const m = model(13);
  const rng = new Rng(5);
  await assert.rejects(
    () =>
      generate(m, [prompt(rng, 3), prompt(rng, 32)], {
        maxNewTokens: 4,
        stopIds: [],
        padId: 0,
        rng: new Rng(1),
      }),
    {
      name: "RangeError",
      message:
        "Prompt 1 too long: must be shorter than the context of 32 tokens: current value is 32 tokens",
    },
  );
  m.dispose();
});

/**
 * Generates greedily from rows of mixed lengths in batches of 1, 3 and 7, and each row alone;
 * checks the ids and finish reasons are equal and returns the largest log-prob difference.
 */
async function batchedVersusAlone(m: Transformer): Promise<number> {
  const rng = new Rng(6);
  // Lengths 27 and 22 leave budgets of 5 and 10 under maxNewTokens 12; the rest get 12.
  const lengths = [3, 27, 9, 1, 22, 14, 6];
  const opts = { maxNewTokens: 12, greedy: true, stopIds: [2], padId: 0 };
  let worst = 0;
  for (const size of [1, 3, 7]) {
    const prompts = lengths.slice(0, size).map((n) => prompt(rng, n));
    const batched = await generate(m, prompts, { ...opts, rng: new Rng(1) });
    for (const [r, p] of prompts.entries()) {
      const [alone] = await generate(m, [p], { ...opts, rng: new Rng(1) });
      const where = `batch of ${size}, row ${r} (prompt of ${p.length})`;
      const budget = Math.min(opts.maxNewTokens, CONFIG.max_position_embeddings - p.length);
      assert.ok(alone!.tokens.length > 0 && alone!.tokens.length <= budget, where);
      assert.deepEqual(batched[r]!.tokens, alone!.tokens, where);
      assert.equal(batched[r]!.finishReason, alone!.finishReason, where);
      worst = Math.max(worst, maxAbsDiff(batched[r]!.logprobs, alone!.logprobs));
    }
  }
  return worst;
}

// Within 1e-6, not bitwise, on wasm: padded keys get -1e9, so their softmax weights are
// exactly 0, but the wasm softmax (XNNPACK) sums over the key axis in SIMD lanes, and a row's
// left padding shifts which lane each real key lands in, so the float32 sum is reassociated
// (1 ulp of an attention weight; at most 4e-7 of log-prob here). The matmuls match bitwise.
Deno.test("generate() gives a greedy row of a mixed batch the ids and log-probs it gets alone", async () => {
  const m = model(17);
  const worst = await batchedVersusAlone(m);
  assert.ok(worst <= 1e-6, `max |Δlogp| = ${worst}`);
  m.dispose();
});

// The cpu backend sums in order, so the zeros of padded keys change nothing: bitwise.
Deno.test("generate() gives a greedy row of a mixed batch bitwise the log-probs it gets alone on cpu", async () => {
  await initBackend("cpu");
  try {
    const m = model(17);
    assert.equal(await batchedVersusAlone(m), 0);
    m.dispose();
  } finally {
    await initBackend("wasm");
  }
});
