/**
 * Live settings (`Configure`, sent by the driver after `PATCH /config`) reach every actor
 * that uses them: the PromptSource's sampling, the Corrector's phrases and H, the RefPolicy's
 * temperature, the Learner's learning rate and temperature, and the algorithms' coefficients.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { promptSource } from "../../actors/prompt_source.ts";
import { corrector } from "../../algorithms/mgrpo/corrector.ts";
import { refPolicy } from "../../actors/ref_policy.ts";
import { learner } from "../../actors/learner.ts";
import type { Configure, Generate, Scored, StepStats, TrainBatch } from "../../actors/messages.ts";
import { grpoAlgorithm, GrpoConfigSchema } from "../../algorithms/grpo/mod.ts";
import { MgrpoConfigSchema } from "../../algorithms/mgrpo/mod.ts";
import { ppoAlgorithm, PpoConfigSchema } from "../../algorithms/ppo/mod.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { initBackend } from "../../model/backend.ts";
import { completionLogprobs } from "../../model/sampling.ts";
import {
  assertClose,
  makeLearnerInput,
  makeScored,
  makeTinyModel,
  maxAbsDiff,
  recordingContext,
  renderTestPrompt,
  TWO_GROUPS,
  TWO_QUERIES,
} from "../helpers.ts";

await initBackend("wasm");

const TOKENIZER = new CharTokenizer();
const SAMPLING = { maxNewTokens: 8, temperature: 1, topP: 1, topK: 0, greedy: false };
const QUERIES = TWO_QUERIES;
const ROLLOUTS = TWO_GROUPS;

Deno.test("promptSource takes temperature and top-p from Configure for the next steps", async () => {
  const ctx = recordingContext("prompt_source");
  let state = await promptSource.init({
    tokenizer: TOKENIZER,
    renderPrompt: renderTestPrompt,
    task: { minSteps: 2, maxSteps: 2, maxOperand: 9 },
    exclude: new Set(),
    seed: 1,
    promptsPerStep: 2,
    numGenerations: 2,
    sampling: SAMPLING,
  }, ctx);
  state = (await promptSource.handle(state, { type: "Next", step: 1 }, ctx)) ?? state;
  const configure: Configure = {
    type: "Configure",
    values: { "sampler.temperature": 0.7, "sampler.top_p": 0.9, "learner.lr": 1 },
  };
  state = (await promptSource.handle(state, configure, ctx)) ?? state;
  state = (await promptSource.handle(state, { type: "Next", step: 2 }, ctx)) ?? state;
  const [before, after] = ctx.to<Generate>("sampler");
  assert.deepEqual(before!.params, SAMPLING);
  assert.deepEqual(after!.params, { ...SAMPLING, temperature: 0.7, topP: 0.9 });
  assert.equal(SAMPLING.temperature, 1, "the input object is not mutated");
});

Deno.test("corrector takes guide phrases, H and sampling from Configure", async () => {
  const config = MgrpoConfigSchema.parse({ num_corrections: 3, guide_phrases: ["Check."] });
  const ctx = recordingContext("corrector");
  const state = await corrector.init(
    { tokenizer: TOKENIZER, config, seed: 1, sampling: SAMPLING, target: "learner" },
    ctx,
  );
  await corrector.handle(state, {
    type: "Configure",
    values: {
      "mgrpo.guide_phrases": ["Look again."],
      "mgrpo.num_corrections": 2,
      "sampler.temperature": 0.5,
    },
  }, ctx);
  const layer1 = await makeScored(makeTinyModel(1), QUERIES, ROLLOUTS, { n: 2, step: 4 });
  await corrector.handle(state, layer1, ctx);
  const generate = ctx.only<Generate>("sampler");
  assert.equal(generate.n, 2);
  assert.deepEqual(generate.params, { ...SAMPLING, temperature: 0.5 });
  for (const q of generate.queries) assert.ok(q.prompt.endsWith("\nLook again."), q.prompt);
  assert.equal(config.num_corrections, 3, "the input config is not mutated");

  // The Layer-2 batch comes back; the step's metrics count the new phrase pool.
  const layer2: Scored = {
    ...layer1,
    label: "layer2",
    queries: generate.queries,
    n: 2,
    rollouts: layer1.rollouts.flatMap((r, i) => [0, 1].map(() => ({ ...r, queryIndex: i }))),
    verdicts: layer1.verdicts.flatMap((v) => [v, v]),
  };
  await corrector.handle(state, layer2, ctx);
  const batch = ctx.only<TrainBatch>("learner");
  assert.equal(batch.metrics["mgrpo/guide_phrase_0"], 4);
  assert.equal(batch.metrics["mgrpo/guide_phrase_1"], undefined);
});

Deno.test("refPolicy computes reference log-probs at the temperature from Configure", async () => {
  const policy = makeTinyModel(5);
  const ref = makeTinyModel(6, { trainable: false });
  const scored = await makeScored(policy, QUERIES, ROLLOUTS, { n: 2 });
  const ctx = recordingContext("ref_policy");
  const state = await refPolicy.init({ model: ref, padId: 0, temperature: 1 }, ctx);
  await refPolicy.handle(state, { type: "Configure", values: { "sampler.temperature": 2 } }, ctx);
  await refPolicy.handle(state, scored, ctx);
  const expected = await completionLogprobs(
    ref,
    scored.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
    scored.rollouts.map((r) => r.completionIds),
    { padId: 0, temperature: 2 },
  );
  const got = ctx.only<Scored>("learner").refLogprobs!;
  assert.equal(maxAbsDiff(got.flat(), expected.flat()), 0);
  policy.dispose();
  ref.dispose();
});

Deno.test("learner uses the learning rate from Configure for the next update", async () => {
  const model = makeTinyModel(5);
  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(model), ctx);
  const step1 = await makeScored(model, QUERIES, ROLLOUTS, { n: 2, step: 1 });
  await learner.handle(state, step1, ctx);
  await learner.handle(state, { type: "Configure", values: { "learner.lr": 1e-3 } }, ctx);
  const step2 = await makeScored(model, QUERIES, ROLLOUTS, { n: 2, step: 2 });
  await learner.handle(state, step2, ctx);
  const lrs = ctx.to<StepStats>("stats").map((s) => s.metrics["learning_rate"]);
  assert.deepEqual(lrs, [1e-2, 1e-3]);
  learner.close!(state);
  model.dispose();
});

/** One token, ratio e^0.3 ≈ 1.35, advantage 1: the clipped surrogate is -(1 + ε). */
function clippedLoss(algorithm: ReturnType<typeof grpoAlgorithm>): number {
  return tf.tidy(() => {
    const { loss } = algorithm.loss({
      logp: tf.tensor2d([[0.3]]),
      oldLogp: tf.tensor2d([[0]]),
      refLogp: tf.tensor2d([[0.3]]),
      advantages: tf.tensor1d([1]),
      mask: tf.tensor2d([[1]]),
    }, { rowFraction: 1, numItemsInBatch: 1 });
    return loss.dataSync()[0]!;
  });
}

Deno.test("grpoAlgorithm.configure() changes ε (and ε_high with it) and β of the loss", () => {
  const algorithm = grpoAlgorithm(GrpoConfigSchema.parse({ epsilon: 0.2, beta: 0 }), 1);
  assertClose(clippedLoss(algorithm), -1.2, 1e-6);
  algorithm.configure!({ type: "Configure", values: { "grpo.epsilon": 0.25 } });
  assertClose(clippedLoss(algorithm), -1.25, 1e-6);
  // β > 0 adds β · k3 KL; log π_ref = log π: KL 0, so the loss is unchanged.
  algorithm.configure!({ type: "Configure", values: { "grpo.beta": 0.5 } });
  assertClose(clippedLoss(algorithm), -1.25, 1e-6);
  // An ε_high set apart stays put.
  const apart = grpoAlgorithm(GrpoConfigSchema.parse({ epsilon: 0.2, epsilon_high: 0.28 }), 1);
  apart.configure!({ type: "Configure", values: { "grpo.epsilon": 0.1 } });
  assertClose(clippedLoss(apart), -1.28, 1e-6);
});

Deno.test("ppoAlgorithm.configure() changes the clip range of the loss", () => {
  const algorithm = ppoAlgorithm(PpoConfigSchema.parse({ cliprange: 0.2 }));
  const loss = () =>
    tf.tidy(() =>
      algorithm.loss({
        logp: tf.tensor2d([[0.3]]),
        oldLogp: tf.tensor2d([[0]]),
        advantages: tf.tensor2d([[1]]),
        mask: tf.tensor2d([[1]]),
      }, { rowFraction: 1, numItemsInBatch: 1 }).loss.dataSync()[0]!
    );
  assertClose(loss(), -1.2, 1e-6);
  algorithm.configure!({
    type: "Configure",
    values: { "ppo.cliprange": 0.1, "grpo.epsilon": 0.5 },
  });
  assertClose(loss(), -1.1, 1e-6);
});
