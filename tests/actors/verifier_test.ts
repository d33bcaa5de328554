import assert from "node:assert/strict";
import { verifier } from "../../actors/verifier.ts";
import type { Query, Rollout, Rollouts, Scored, Verdict } from "../../actors/messages.ts";
import { recordingContext } from "../helpers.ts";

const QUERIES: Query[] = [
  { id: "q0", question: "What is 2 + 3?", answer: 5, promptIds: [1, 2] },
  { id: "q1", question: "What is 7 - 4?", answer: 3, promptIds: [1, 3] },
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
    { reward: 1, correct: true, parsed: "5", reason: "correct" },
    { reward: 0, correct: false, parsed: "6", reason: "wrong answer" },
    { reward: 0, correct: false, parsed: null, reason: "no </think> tag" },
    { reward: 0, correct: false, parsed: null, reason: "unclosed <think>" },
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
    { trainTarget: "ref_policy" },
    rollouts("train", [[0, "<think>2+3=5</think>5"]]),
    ctx,
  );
  assert.deepEqual(ctx.sent.map((s) => s.to), ["ref_policy"]);
});

Deno.test("verifier.handle() sends evaluation rollouts to the eval sink", async () => {
  const ctx = recordingContext("verifier");
  await verifier.handle(
    { trainTarget: "learner" },
    rollouts("eval", [[0, "<think>2+3=5</think>5"], [1, "<think>7-4=3</think>4"]]),
    ctx,
  );
  const scored = ctx.only<Scored>("eval");
  assert.equal(scored.purpose, "eval");
  assert.equal(scored.label, "before");
  assert.deepEqual(scored.verdicts.map((v) => v.reward), [1, 0]);

  const custom = recordingContext("verifier");
  await verifier.handle(
    { trainTarget: "learner", evalTarget: "held_out" },
    rollouts("eval", [[0, "<think>2+3=5</think>5"]]),
    custom,
  );
  assert.deepEqual(custom.sent.map((s) => s.to), ["held_out"]);
});

Deno.test("verifier.handle() uses an injected reward function with the query's gold answer", async () => {
  const ctx = recordingContext("verifier");
  const calls: [string, number | string][] = [];
  const reward = (completion: string, gold: number | string): Verdict => {
    calls.push([completion, gold]);
    return { reward: completion.length / 10, correct: false, parsed: null, reason: "length" };
  };
  await verifier.handle(
    { trainTarget: "learner", reward },
    rollouts("train", [[0, "abcde"], [1, "ab"]]),
    ctx,
  );
  assert.deepEqual(calls, [["abcde", 5], ["ab", 3]]);
  assert.deepEqual(ctx.only<Scored>("learner").verdicts.map((v) => v.reward), [0.5, 0.2]);
});

Deno.test("verifier.handle() rejects a message of another type", async () => {
  const ctx = recordingContext("verifier");
  await assert.rejects(
    () =>
      verifier.handle(
        { trainTarget: "learner" },
        { type: "Next", step: 1 } as unknown as Rollouts,
        ctx,
      ) as Promise<unknown>,
    { name: "TypeError", message: 'Unknown message type: "Next"' },
  );
  assert.equal(ctx.sent.length, 0);
});
