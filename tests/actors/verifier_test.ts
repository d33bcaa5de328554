import assert from "node:assert/strict";
import { verifier } from "../../actors/verifier.ts";
import type { Query, Rollout, Rollouts, Scored } from "../../actors/messages.ts";
import { correctReward, createScorer, type RewardSample } from "../../verifiers/reward.ts";
import { buildLayer2Prompt, layer2Answer } from "../../algorithms/mgrpo/mod.ts";
import { buildChecker } from "../../training/rewards.ts";
import { RewardConfigSchema } from "../../config/schema.ts";
import { recordingContext } from "../helpers.ts";

type VerifierState = Awaited<ReturnType<typeof verifier.init>>;

const QUERIES: Query[] = [
  { id: "q0", question: "What is 2 + 3?", answer: 5, prompt: "p0", promptIds: [1, 2] },
  { id: "q1", question: "What is 7 - 4?", answer: 3, prompt: "p1", promptIds: [1, 3] },
];

function rollout(queryIndex: number, text: string): Rollout {
  return { queryIndex, completionIds: [9, 9], logprobs: [-1, -2], text, finishReason: "stop" };
}

function rollouts(purpose: "train" | "eval", texts: [number, string][]): Rollouts {
  return {
    type: "Rollouts",
    purpose,
    step: 3,
    label: purpose === "eval" ? "before" : "train",
    queries: QUERIES,
    n: 2,
    policyVersion: 4,
    rollouts: texts.map(([q, t]) => rollout(q, t)),
    timings: { sampler: 0.012 },
  };
}

Deno.test("verifier.handle() scores correct, wrong and malformed completions", async () => {
  const ctx = recordingContext("verifier");
  const state = await verifier.init({ trainTarget: "learner" }, ctx);
  const message = rollouts("train", [
    [0, "<think>2+3=5</think>5"],
    [0, "<think>2+3=6</think>6"],
    [1, "the answer is 3"],
    [1, "<think>7-4=3"],
  ]);
  await verifier.handle(state, message, ctx);

  const scored = ctx.only<Scored>("learner");
  assert.equal(ctx.sent.length, 1);
  assert.equal(scored.type, "Scored");
  assert.deepEqual(scored.verdicts, [
    { reward: 1, correct: true, parsed: "5", reason: "correct", components: { correct: 1 } },
    { reward: 0, correct: false, parsed: "6", reason: "wrong answer", components: { correct: 0 } },
    {
      reward: 0,
      correct: false,
      parsed: null,
      reason: "no </think> tag",
      components: { correct: 0 },
    },
    {
      reward: 0,
      correct: false,
      parsed: null,
      reason: "unclosed <think>",
      components: { correct: 0 },
    },
  ]);
  // Everything else of the Rollouts message is carried through unchanged.
  const { type: _a, verdicts: _v, timings, ...rest } = scored;
  const { type: _b, timings: before, ...original } = message;
  assert.deepEqual(rest, original);
  // The Verifier adds its own time to the timings it received.
  assert.equal(timings.sampler, before.sampler);
  assert.ok(timings.verifier! >= 0);
});

Deno.test("verifier.handle() routes training rollouts to the ref policy when set", async () => {
  const ctx = recordingContext("verifier");
  await verifier.handle(
    verifier.init({ trainTarget: "ref_policy" }, ctx) as VerifierState,
    rollouts("train", [[0, "<think>2+3=5</think>5"]]),
    ctx,
  );
  assert.deepEqual(ctx.sent.map((s) => s.to), ["ref_policy"]);
});

Deno.test("verifier.handle() sends evaluation rollouts to the eval sink", async () => {
  const ctx = recordingContext("verifier");
  await verifier.handle(
    verifier.init({ trainTarget: "learner" }, ctx) as VerifierState,
    rollouts("eval", [[0, "<think>2+3=5</think>5"], [1, "<think>7-4=3</think>4"]]),
    ctx,
  );
  const scored = ctx.only<Scored>("eval");
  assert.equal(scored.purpose, "eval");
  assert.equal(scored.label, "before");
  assert.deepEqual(scored.verdicts.map((v) => v.reward), [1, 0]);

  const custom = recordingContext("verifier");
  await verifier.handle(
    verifier.init({ trainTarget: "learner", evalTarget: "held_out" }, ctx) as VerifierState,
    rollouts("eval", [[0, "<think>2+3=5</think>5"]]),
    custom,
  );
  assert.deepEqual(custom.sent.map((s) => s.to), ["held_out"]);
});

Deno.test("verifier.handle() runs an injected scorer on prompt, completion, gold answer and metadata", async () => {
  const ctx = recordingContext("verifier");
  const seen: RewardSample[] = [];
  const score = createScorer(
    (completion, answer) => ({
      correct: completion.endsWith(answer),
      parsed: completion.slice(-1),
      reason: "last char",
    }),
    [
      { name: "correct", fn: correctReward, weight: 1 },
      {
        name: "length",
        fn: async (s) => {
          seen.push(s);
          await Promise.resolve();
          return s.completion.length / 10;
        },
        weight: 0.5,
      },
      { name: "abstain", fn: () => null, weight: 3 },
    ],
  );
  await verifier.handle(
    verifier.init({ trainTarget: "learner", score }, ctx) as VerifierState,
    rollouts("train", [[0, "abcd5"], [1, "ab"]]),
    ctx,
  );
  assert.deepEqual(seen.map((s) => [s.prompt, s.completion, s.answer, s.metadata.id]), [
    ["p0", "abcd5", "5", "q0"],
    ["p1", "ab", "3", "q1"],
  ]);
  assert.deepEqual(seen[0]!.metadata, {
    id: "q0",
    purpose: "train",
    label: "train",
    step: 3,
    finishReason: "stop",
    correct: true,
    parsed: "5",
  });
  const verdicts = ctx.only<Scored>("learner").verdicts;
  // 1·1 + 0.5·0.5 (the abstaining function is left out of the sum); 1·0 + 0.5·0.2.
  assert.deepEqual(verdicts.map((v) => v.reward), [1.25, 0.1]);
  assert.deepEqual(verdicts[0]!.components, { correct: 1, length: 0.5, abstain: null });
});

Deno.test("verifier.handle() scores a Layer-2 correction on its continuation, not on o_i in q'_i", async () => {
  // reward.checker: math, as the CLI builds it (a Worker pool, closed below).
  const { checker, close } = buildChecker(
    RewardConfigSchema.parse({ checker: "math", workers: 1 }),
  );
  try {
    const score = createScorer(checker, [{ name: "correct", fn: correctReward, weight: 1 }]);
    // o_i is right, and q'_i holds it: the Layer-1 answer in the prompt is 5.
    const layer1Output = "<think>2+3=5</think>\\boxed{5}";
    assert.equal((await checker(layer1Output, "5")).correct, true);
    // Scored on the whole assistant turn, a correction with no answer would be credited with
    // o_i's \boxed{5}, which the math checker finds after the guide phrase.
    const wholeTurn = layer2Answer(layer1Output, "\n", "Wait.", " let me see");
    assert.equal((await checker(wholeTurn, "5")).correct, true);
    const prompt = buildLayer2Prompt("What is 2 + 3?", layer1Output, "Wait.", { systemPrompt: "" });
    const query: Query = {
      id: "q0",
      question: "What is 2 + 3?",
      answer: 5,
      prompt,
      promptIds: [1],
    };
    const ctx = recordingContext("verifier");
    await verifier.handle(
      verifier.init({ trainTarget: "corrector", score }, ctx) as VerifierState,
      {
        ...rollouts("train", []),
        label: "layer2",
        queries: [query],
        // The Sampler's texts of two corrections õ_01, õ_02: what follows p_guide.
        rollouts: [rollout(0, " let me see"), rollout(0, " 2+3=5</think>5")],
      },
      ctx,
    );
    const verdicts = ctx.only<Scored>("corrector").verdicts;
    // No answer of its own: wrong, o_i's 5 in the prompt does not count for it.
    assert.equal(verdicts[0]!.reward, 0);
    assert.equal(verdicts[0]!.correct, false);
    assert.notEqual(verdicts[0]!.parsed, "5");
    // Its own </think> and answer: right.
    assert.deepEqual(
      [verdicts[1]!.reward, verdicts[1]!.correct, verdicts[1]!.parsed],
      [1, true, "5"],
    );
  } finally {
    await close();
  }
});

Deno.test("verifier.handle() rejects a message of another type", async () => {
  const ctx = recordingContext("verifier");
  await assert.rejects(
    () =>
      verifier.handle(
        verifier.init({ trainTarget: "learner" }, ctx) as VerifierState,
        { type: "Next", step: 1 } as unknown as Rollouts,
        ctx,
      ) as Promise<unknown>,
    { name: "TypeError", message: 'Unknown message type: "Next"' },
  );
  assert.equal(ctx.sent.length, 0);
});
