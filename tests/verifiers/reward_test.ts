import assert from "node:assert/strict";
import {
  correctReward,
  createScorer,
  defaultRewardRegistry,
  integerChecker,
  RewardRegistry,
  type RewardSample,
} from "../../verifiers/reward.ts";

function sample(completion: string, answer = "5", id = "q0"): RewardSample {
  return { prompt: "What is 2 + 3?", completion, answer, metadata: { id } };
}

Deno.test("createScorer() sums weighted rewards and keeps each component", async () => {
  const registry = defaultRewardRegistry();
  const score = createScorer(integerChecker, [
    { name: "correct", fn: registry.get("correct"), weight: 1 },
    { name: "format", fn: registry.get("format"), weight: 0.25 },
  ]);
  const verdicts = await score([
    sample("<think>2+3=5</think>5"),
    sample("<think>2+3=6</think>6"),
    sample("5"),
  ]);
  assert.deepEqual(verdicts.map((v) => v.reward), [1.25, 0.25, 0]);
  assert.deepEqual(verdicts.map((v) => v.correct), [true, false, false]);
  assert.deepEqual(verdicts[1]!.components, { correct: 0, format: 1 });
  assert.equal(verdicts[2]!.reason, "no </think> tag");
});

Deno.test("createScorer() skips a sample on which every function abstains", async () => {
  const score = createScorer(integerChecker, [
    { name: "sometimes", fn: (s) => (s.completion.endsWith("5") ? 2 : null), weight: 0.5 },
    { name: "never", fn: () => null, weight: 1 },
  ]);
  const verdicts = await score([sample("<think>2+3=5</think>5"), sample("<think>x</think>7")]);
  assert.equal(verdicts[0]!.reward, 1);
  assert.equal(verdicts[1]!.reward, null);
  assert.deepEqual(verdicts[1]!.components, { sometimes: null, never: null });
});

Deno.test("createScorer() runs async functions and an async checker, in order", async () => {
  const score = createScorer(
    async (completion, answer) => {
      await new Promise((r) => setTimeout(r, completion.length % 3));
      return { correct: completion === answer, parsed: completion, reason: "exact" };
    },
    [{
      name: "delayed",
      fn: async (s) => {
        await new Promise((r) => setTimeout(r, 3 - (s.completion.length % 3)));
        return s.completion.length;
      },
      weight: 1,
    }, { name: "correct", fn: correctReward, weight: 10 }],
  );
  const verdicts = await score([sample("5"), sample("12"), sample("abc", "abc")]);
  assert.deepEqual(verdicts.map((v) => v.reward), [11, 2, 13]);
});

Deno.test("createScorer() fails with the function's name on a non-finite or thrown reward", async () => {
  const nan = createScorer(integerChecker, [{ name: "broken", fn: () => NaN, weight: 1 }]);
  await assert.rejects(() => nan([sample("x", "5", "q7")]), {
    name: "RangeError",
    message:
      'Reward function "broken" must return a finite number or null: current value is NaN on sample "q7"',
  });
  const throws = createScorer(integerChecker, [{
    name: "boom",
    fn: () => {
      throw new Error("no network");
    },
    weight: 1,
  }]);
  await assert.rejects(() => throws([sample("x")]), {
    message: 'Reward function "boom" failed on sample "q0": no network',
  });
  assert.throws(() => createScorer(integerChecker, []), RangeError);
});

Deno.test("RewardRegistry.get() lists the known names for an unknown one", () => {
  const registry = defaultRewardRegistry().register("mine", () => 1);
  assert.deepEqual(registry.names(), ["correct", "format", "mine"]);
  assert.throws(() => registry.get("nope"), {
    name: "RangeError",
    message: 'Unknown reward function "nope": known names are "correct", "format", "mine"',
  });
  assert.throws(() => registry.register("mine", () => 0), /the name is taken/);
  assert.throws(() => new RewardRegistry().register("", () => 0), /must not be empty/);
});
