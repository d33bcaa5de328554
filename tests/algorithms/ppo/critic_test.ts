import assert from "node:assert/strict";
import { critic } from "../../../algorithms/ppo/critic.ts";
import type { Query, Scored, TrainBatch } from "../../../actors/messages.ts";
import { PpoConfigSchema } from "../../../algorithms/ppo/mod.ts";
import { initBackend } from "../../../model/backend.ts";
import { makeTinyModel, recordingContext } from "../../helpers.ts";

await initBackend("wasm");

const QUERIES: Query[] = [
  { id: "q0", question: "2+3?", answer: 5, prompt: "p0", promptIds: [1, 20, 21] },
  { id: "q1", question: "7-4?", answer: 3, prompt: "p1", promptIds: [1, 22] },
];

/** Three completions of lengths 4, 2 and 3 with rewards 1, 0 and null (skipped). */
function batch(refLogprobs?: number[][]): Scored {
  return {
    type: "Scored",
    purpose: "train",
    step: 5,
    label: "train",
    queries: QUERIES,
    n: 1,
    policyVersion: 2,
    rollouts: [
      {
        queryIndex: 0,
        completionIds: [30, 31, 32, 2],
        logprobs: [-1, -1, -1, -1],
        text: "a",
        finishReason: "stop",
      },
      {
        queryIndex: 1,
        completionIds: [33, 2],
        logprobs: [-0.5, -0.5],
        text: "b",
        finishReason: "stop",
      },
      {
        queryIndex: 1,
        completionIds: [34, 35, 2],
        logprobs: [-2, -2, -2],
        text: "c",
        finishReason: "stop",
      },
    ],
    verdicts: [
      { reward: 1, correct: true, parsed: "5", reason: "correct" },
      { reward: 0, correct: false, parsed: "4", reason: "wrong answer" },
      { reward: null, correct: false, parsed: null, reason: "skipped" },
    ],
    timings: { sampler: 0.01 },
    ...(refLogprobs ? { refLogprobs } : {}),
  };
}

Deno.test("critic.handle() sends GAE advantages of a zero-initialised value model to the learner", async () => {
  const ctx = recordingContext("critic");
  const config = PpoConfigSchema.parse({ gamma: 1, lam: 1, whiten_advantages: false, kl_coef: 0 });
  const state = critic.init(
    { model: makeTinyModel(1, { trainable: true }), padId: 0, config },
    ctx,
  );
  await critic.handle(state as Awaited<typeof state>, batch(), ctx);
  const sent = ctx.only<TrainBatch>("learner");
  assert.equal(sent.type, "TrainBatch");
  assert.equal(sent.step, 5);
  const [part] = sent.parts;
  // V = 0 everywhere, γ = λ = 1, no KL: every token's advantage is the outcome reward.
  assert.deepEqual(part!.scored.tokenAdvantages, [[1, 1, 1, 1], [0, 0], [0, 0, 0]]);
  assert.deepEqual(part!.keep, [true, true, false]);
  assert.equal(sent.metrics["value/mean"], 0);
  // Returns of the kept rows: 4 tokens of 1 and 2 of 0.
  assert.ok(Math.abs(sent.metrics["returns/mean"]! - 4 / 6) < 1e-9);
  // 0.5 · mean((0 - R)²) over the kept tokens, times vf_coef 0.1, at the first epoch.
  assert.ok(
    sent.metrics["loss/value"]! > 0 && sent.metrics["loss/value"]! <= 0.1 * 0.5 * 4 / 6 + 1e-6,
  );
  assert.ok(part!.scored.timings.critic! > 0);
  critic.close!(state as Awaited<typeof state>);
});

Deno.test("critic.handle() fits the value model to the returns over steps", async () => {
  const ctx = recordingContext("critic");
  const config = PpoConfigSchema.parse({
    kl_coef: 0,
    value_lr: 1e-2,
    ppo_epochs: 2,
    num_mini_batches: 2, // 4 value steps a batch, on rows [0, 1) and [1, 3)
  });
  const state = await critic.init({
    model: makeTinyModel(2, { trainable: true }),
    padId: 0,
    config,
  }, ctx);
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) {
    await critic.handle(state, batch(), ctx);
    losses.push((ctx.sent.at(-1)!.message as unknown as TrainBatch).metrics["loss/value"]!);
  }
  assert.ok(losses[4]! < losses[0]! / 2, `value loss ${losses}`);
  critic.close!(state);
});

Deno.test("critic.handle() puts -β·KL on every token when reference log-probs are given", async () => {
  const ctx = recordingContext("critic");
  const config = PpoConfigSchema.parse({
    gamma: 1,
    lam: 1,
    whiten_advantages: false,
    kl_coef: 0.5,
  });
  const state = await critic.init({
    model: makeTinyModel(3, { trainable: true }),
    padId: 0,
    config,
  }, ctx);
  // k1 KL = logp - ref = -1 - (-2) = 1 per token of row 0; 0 elsewhere.
  await critic.handle(state, batch([[-2, -2, -2, -2], [-0.5, -0.5], [-2, -2, -2]]), ctx);
  const sent = ctx.only<TrainBatch>("learner");
  // Rewards of row 0: [-0.5, -0.5, -0.5, -0.5 + 1]; with V = 0, γ = λ = 1, A_t = Σ_{s≥t} r_s.
  assert.deepEqual(sent.parts[0]!.scored.tokenAdvantages![0], [-1, -0.5, 0, 0.5]);
  assert.equal(sent.metrics["ppo/kl_coef"], 0.5);
  critic.close!(state);
});
