/**
 * Which continuation a policy's guided corrections take on the dev split, and how often each is
 * right: a correction that counts each step out (`deno task sft --layer2-target count`, e.g.
 * ` 9-6:8,5 7,4 …`; with `--count-form operands` ` 9-6;4:8,5;4 …`, with `letters`
 * ` 9-6;a4:8,5;a4 …`), one that undoes the answer's equations first (` 3+6=9 ok …`,
 * `--layer2-target check-count`), one that redoes the chain (` 9-6=3 …`), or one that ends the
 * thought at once and changes the answer (`</think>6`, `deno task sft --flip-share`), as
 * `tools/branches.ts` tells them apart. Used for the design choices of docs/self-correction.md
 * ("A slower check"), never on the held-out set.
 *
 *   deno run -A tools/correction_branches.ts --checkpoint DIR [--temperature T] [--limit N] [--seeds K]
 *     [--first-tokens N] [--correction-tokens N]   (token budgets of first answers, 112, and corrections)
 *     [--split dev|dev_unseen --set task.dev_unseen_size=N]   (the split: dev by default)
 *     [--breaks]   (also print each right first answer the correction broke, with both completions)
 *     [--by-phrase]   (also each guide phrase's corrections, per first-answer verdict and branch)
 *     [--by-op]   (also first answers and corrections of the problems with a subtraction and of the others)
 *
 * `--temperature 0` (the default) is greedy; otherwise each of `--seeds` seeds (default 2) samples
 * the first answers and their corrections at T. Prints, per branch and per first-answer verdict,
 * right/total; the Layer-2 query is the embedded default's (`configs/tiny-mgrpo.yaml`), with
 * `--correction-tokens` new tokens (by default the config's `mgrpo.layer2_max_new_tokens`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../training/config.ts";
import type { EvalSplit } from "../config/schema.ts";
import { selfCorrectionOptions } from "../training/evaluate.ts";
import { heldOut } from "../training/setup.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { evaluateSelfCorrection } from "../algorithms/mgrpo/evaluate.ts";
import { initBackend } from "../model/backend.ts";
import { correctionBranch } from "./branches.ts";
import { hasSubtraction } from "./split_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    checkpoint: { type: "string" },
    temperature: { type: "string", default: "0" },
    limit: { type: "string", default: "1000" },
    seeds: { type: "string", default: "2" },
    "first-tokens": { type: "string", default: "112" },
    "correction-tokens": { type: "string" },
    split: { type: "string", default: "dev" },
    set: { type: "string", multiple: true, default: [] },
    breaks: { type: "boolean", default: false },
    "by-phrase": { type: "boolean", default: false },
    "by-op": { type: "boolean", default: false },
  },
});
if (values.checkpoint === undefined) {
  console.error(
    "Usage: deno run -A tools/correction_branches.ts --checkpoint DIR [--temperature T]",
  );
  Deno.exit(2);
}
const temperature = Number(values.temperature);
const config = loadConfig("configs/tiny-mgrpo.yaml", { overrides: values.set });
await initBackend("wasm", {});
const problems = heldOut(config.task, values.split as EvalSplit).problems.slice(
  0,
  Number(values.limit),
);
const { model, tokenizer } = await loadCheckpoint(values.checkpoint, { trainable: false });
const tally = new Map<string, [number, number]>();
const add = (key: string, right: boolean) => {
  const t = tally.get(key) ?? [0, 0];
  tally.set(key, [t[0] + (right ? 1 : 0), t[1] + 1]);
};
const seeds = temperature === 0
  ? [0]
  : Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
for (const seed of seeds) {
  const result = await evaluateSelfCorrection(model, tokenizer, problems, {
    ...selfCorrectionOptions(config),
    maxNewTokens: Number(values["first-tokens"]),
    correctionMaxNewTokens: values["correction-tokens"] === undefined
      ? config.mgrpo.layer2_max_new_tokens ?? 112
      : Number(values["correction-tokens"]),
    greedy: temperature === 0,
    temperature: temperature || 1,
    seed,
    rounds: 1,
  });
  result.verdicts.forEach((v, i) => {
    const branch = correctionBranch(result.completions[i]![1]!);
    const first = v[0] ? "first answer right" : "first answer wrong";
    add(branch, v[1]!);
    add(`${first}, ${branch}`, v[1]!);
    add("first answer", v[0]!);
    if (values["by-phrase"]) {
      add(`phrase ${JSON.stringify(result.phrases[i]![0])}, ${first}, ${branch}`, v[1]!);
    }
    if (values["by-op"]) {
      const kind = hasSubtraction(problems[i]!) ? "with a subtraction" : "without one";
      add(`problems ${kind}: first answer`, v[0]!);
      add(`problems ${kind}: correction`, v[1]!);
    }
    if (values.breaks && v[0] && !v[1]) {
      console.log(
        `right -> wrong (seed ${seed}, answer ${problems[i]!.answer}): ${
          JSON.stringify(result.completions[i])
        }`,
      );
    }
  });
}
model.dispose();
console.log(
  `${values.checkpoint}: ${
    temperature === 0 ? "greedy" : `T = ${temperature}`
  }, ${problems.length} ${values.split} problems × ${seeds.length}`,
);
for (const [key, [right, n]] of [...tally].sort()) {
  console.log(`  ${key}: ${right}/${n} right (${(100 * right / n).toFixed(1)}%)`);
}
