import assert from "node:assert/strict";
import { loadConfig } from "../../training/config.ts";
import { buildScorer } from "../../training/rewards.ts";
import { ConfigError } from "../../config/load.ts";
import { defaultRewardRegistry } from "../../verifiers/reward.ts";

const SAMPLE = {
  prompt: "p",
  completion: "<think>2+3=5</think>5",
  answer: "5",
  metadata: { id: "q0", finishReason: "stop" },
};

Deno.test("buildScorer() loads a reward function from a path in YAML", async () => {
  const config = loadConfig("custom.yaml", {
    text: [
      "reward:",
      "  functions:",
      "    - name: correct",
      "    - name: brevity",
      "      path: examples/brevity_reward.ts",
      "      weight: 0.5",
    ].join("\n"),
  });
  await using scorer = await buildScorer(config);
  const [verdict] = await scorer.score([SAMPLE]);
  // correct 1 + 0.5 · (1 - 5/80)
  assert.equal(verdict!.reward, 1 + 0.5 * (1 - 5 / 80));
  assert.deepEqual(verdict!.components, { correct: 1, brevity: 1 - 5 / 80 });
});

Deno.test("buildScorer() uses functions registered in TypeScript", async () => {
  const registry = defaultRewardRegistry().register("half", () => 0.5);
  const config = loadConfig("custom.yaml", {
    text: "reward:\n  functions:\n    - name: half\n      weight: 2\n",
  });
  await using scorer = await buildScorer(config, { registry });
  const [verdict] = await scorer.score([SAMPLE]);
  assert.equal(verdict!.reward, 1);
  assert.equal(verdict!.correct, true);
});

Deno.test("buildScorer() names the field of an unknown name, a bad path and a missing export", async () => {
  const load = (functions: string) =>
    loadConfig("bad.yaml", { text: `reward:\n  functions:\n${functions}` });
  await assert.rejects(() => buildScorer(load("    - name: nope\n"), { configPath: "bad.yaml" }), {
    name: "ConfigError",
    message:
      'Cannot load config "bad.yaml": field "reward.functions.0.name" is not a known reward function (known: "correct", "format"; or give a path): current value is "nope"',
  });
  await assert.rejects(
    () =>
      buildScorer(load("    - name: correct\n    - name: x\n      path: examples/missing.ts\n"), {
        configPath: "bad.yaml",
      }),
    (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /^Cannot load config "bad\.yaml": field "reward\.functions\.1\.path" cannot be imported: .*: current value is "examples\/missing\.ts"$/,
      );
      return true;
    },
  );
  await assert.rejects(
    () =>
      buildScorer(load("    - name: short\n      path: examples/brevity_reward.ts\n"), {
        configPath: "bad.yaml",
      }),
    {
      message:
        'Cannot load config "bad.yaml": field "reward.functions.0.export" must name a function exported by "examples/brevity_reward.ts" (exports: "brevity"): current value is "short"',
    },
  );
});
