import assert from "node:assert/strict";
import { refPolicy } from "../../actors/ref_policy.ts";
import { learner } from "../../actors/learner.ts";
import type { Scored, StepStats, TrainBatch } from "../../actors/messages.ts";
import { initBackend } from "../../model/backend.ts";
import { completionLogprobs } from "../../model/sampling.ts";
import {
  makeLearnerInput,
  makeScored,
  makeTinyModel,
  maxAbsDiff,
  recordingContext,
  TWO_GROUPS,
  TWO_QUERIES,
} from "../helpers.ts";

await initBackend("wasm");

const QUERIES = TWO_QUERIES;

const ROLLOUTS = TWO_GROUPS;

Deno.test("refPolicy.handle() attaches the frozen model's log-probs and forwards to the learner", async () => {
  const policy = makeTinyModel(5);
  const ref = makeTinyModel(6, { trainable: false });
  const scored = await makeScored(policy, QUERIES, ROLLOUTS, { n: 2 });
  const ctx = recordingContext("ref_policy");
  const state = await refPolicy.init({ model: ref, padId: 0, temperature: 1 }, ctx);
  await refPolicy.handle(state, scored, ctx);

  const out = ctx.only<Scored>("learner");
  assert.equal(ctx.sent.length, 1);
  const expected = await completionLogprobs(
    ref,
    scored.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
    scored.rollouts.map((r) => r.completionIds),
    { padId: 0, temperature: 1 },
  );
  assert.deepEqual(out.refLogprobs, expected);
  out.refLogprobs!.forEach((lp, i) =>
    assert.equal(lp.length, scored.rollouts[i]!.completionIds.length)
  );
  // The reference is another model: its log-probs are not the sampler's.
  assert.ok(maxAbsDiff(out.refLogprobs!.flat(), scored.rollouts.flatMap((r) => r.logprobs)) > 1e-3);
  // Everything else passes through unchanged; the RefPolicy adds its own time.
  const { refLogprobs: _r, timings, ...rest } = out;
  const { timings: before, ...original } = scored;
  assert.deepEqual(rest, original);
  assert.deepEqual(Object.keys(timings).sort(), [...Object.keys(before), "ref_policy"].sort());
  assert.ok(timings.ref_policy! >= 0);
  await refPolicy.close!(state);
  policy.dispose();
});

Deno.test("refPolicy.handle() computes the same log-probs in small batches", async () => {
  const ref = makeTinyModel(6, { trainable: false });
  const scored = await makeScored(ref, QUERIES, ROLLOUTS, { n: 2 });
  const whole = recordingContext("ref_policy");
  await refPolicy.handle({ model: ref, padId: 0, temperature: 1 }, scored, whole);
  const split = recordingContext("ref_policy");
  await refPolicy.handle({ model: ref, padId: 0, temperature: 1, maxBatch: 3 }, scored, split);
  const a = whole.only<Scored>("learner").refLogprobs!;
  const b = split.only<Scored>("learner").refLogprobs!;
  assert.deepEqual(b.map((x) => x.length), a.map((x) => x.length));
  assert.ok(maxAbsDiff(a.flat(), b.flat()) < 1e-5);
  // Teacher forcing the reference model reproduces the log-probs it sampled with.
  assert.ok(maxAbsDiff(a.flat(), scored.rollouts.flatMap((r) => r.logprobs)) < 1e-5);
  ref.dispose();
});

Deno.test("refPolicy.handle() with a reference identical to the policy gives the learner kl 0", async () => {
  const policy = makeTinyModel(5);
  const ref = policy.clone({ trainable: false });
  const scored = await makeScored(policy, QUERIES, ROLLOUTS, { n: 2 });
  const refCtx = recordingContext("ref_policy");
  const refState = await refPolicy.init({ model: ref, padId: 0, temperature: 1 }, refCtx);
  await refPolicy.handle(refState, scored, refCtx);

  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(policy, { grpo: { beta: 0.04 } }), ctx);
  await learner.handle(state, refCtx.only<Scored>("learner"), ctx);
  const m = ctx.only<StepStats>("stats").metrics;
  assert.ok(Math.abs(m["kl"]!) <= 1e-6, `kl = ${m["kl"]}`);

  // With a different reference the k3 estimate is positive.
  const other = makeTinyModel(6, { trainable: false });
  const otherCtx = recordingContext("ref_policy");
  await refPolicy.handle({ model: other, padId: 0, temperature: 1 }, scored, otherCtx);
  const fresh = makeTinyModel(5);
  const ctx2 = recordingContext("learner");
  const state2 = await learner.init(makeLearnerInput(fresh, { grpo: { beta: 0.04 } }), ctx2);
  await learner.handle(state2, otherCtx.only<Scored>("learner"), ctx2);
  assert.ok(ctx2.only<StepStats>("stats").metrics["kl"]! > 1e-4);

  learner.close!(state);
  learner.close!(state2);
  await refPolicy.close!(refState);
  other.dispose();
  policy.dispose();
  fresh.dispose();
});

Deno.test("a TrainBatch part's own temperature reaches the reference and the learner log-probs", async () => {
  const policy = makeTinyModel(5);
  const ref = policy.clone({ trainable: false });
  const scored = await makeScored(policy, QUERIES, ROLLOUTS, { n: 2 });
  const batch: TrainBatch = {
    type: "TrainBatch",
    step: 1,
    update: "joint",
    metrics: {},
    parts: [{ scored, weight: 1, prefix: "", temperature: 0.5 }],
  };
  const refCtx = recordingContext("ref_policy");
  await refPolicy.handle({ model: ref, padId: 0, temperature: 1 }, batch, refCtx);
  const out = refCtx.only<TrainBatch>("learner");
  const atHalf = await completionLogprobs(
    ref,
    scored.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
    scored.rollouts.map((r) => r.completionIds),
    { padId: 0, temperature: 0.5 },
  );
  // The part's 0.5, not the RefPolicy's own 1.
  assert.deepEqual(out.parts[0]!.scored.refLogprobs, atHalf);
  assert.ok(maxAbsDiff(atHalf.flat(), scored.rollouts.flatMap((r) => r.logprobs)) > 1e-2);

  // The learner scores the part at 0.5 too: against the identical reference, kl is 0.
  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(policy, { grpo: { beta: 0.04 } }), ctx);
  await learner.handle(state, out, ctx);
  const kl = ctx.only<StepStats>("stats").metrics["kl"]!;
  assert.ok(Math.abs(kl) <= 1e-6, `kl = ${kl}`);
  learner.close!(state);
  ref.dispose();
  policy.dispose();
});
