/**
 * Bad training data in `Trainer` runs: a malformed JSONL line (stop or skip), and prompts too
 * long for the model's context or not encodable (reject or truncate), counted in
 * `summary.json`.
 */
import assert from "node:assert/strict";
import { exists } from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";

/** Six good problems, two malformed lines (3 and 5), one too long, one not encodable. */
const LINES = [
  '{"question": "Tom has 3 apples. He gets 4 more. How many apples does he have?", "answer": 7}',
  '{"question": "Ann has 5 pens. She gets 2 more. How many pens does she have?", "answer": 7}',
  '{"question": "broken", ',
  '{"question": "Bo has 9 cups. He loses 3. How many cups does he have?", "answer": 6}',
  '{"question": "no answer here"}',
  '{"question": "Cy has 2 hats. He gets 2 more. How many hats does he have?", "answer": 4}',
  '{"question": "Di has 8 keys. She loses 1. How many keys does she have?", "answer": 7}',
  '{"question": "Ed has 6 cars. He gets 1 more. How many cars does he have?", "answer": 7}',
  '{"question": "Fa has 4 bags. She gets 5 more. How many bags does she have?", "answer": 9}',
  JSON.stringify({ question: "x".repeat(300), answer: 1 }),
  JSON.stringify({ question: "What is 2+2? \u2211", answer: 4 }),
];

/** The smoke-grpo run on the dataset of `tmp` for 4 steps. */
async function train(tmp: string, runDir: string, sets: string[]) {
  return await trainInProcess(runDir, "configs/smoke-grpo.yaml", [
    "task.kind=jsonl",
    `task.path=${tmp}/train.jsonl`,
    "task.eval_size=2",
    "run.steps=4",
    "eval.before=false",
    "eval.after=false",
    ...sets,
  ]);
}

async function withDataset(fn: (tmp: string) => Promise<void>) {
  const tmp = await Deno.makeTempDir({ prefix: "dataset-" });
  try {
    await Deno.writeTextFile(`${tmp}/train.jsonl`, LINES.join("\n") + "\n");
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("Trainer.create() stops at a malformed dataset line before writing anything, naming file:line", async () => {
  await withDataset(async (tmp) => {
    const runDir = `${tmp}/run`;
    await assert.rejects(
      () => train(tmp, runDir, []),
      new RegExp(`Cannot load dataset: ${tmp}/train\\.jsonl:3: not JSON`),
    );
    assert.equal(await exists(runDir), false);
  });
});

Deno.test("Trainer.run() counts skipped lines and rejected prompts in summary.json and trains", async () => {
  await withDataset(async (tmp) => {
    const runDir = `${tmp}/run`;
    const { summary, log } = await train(tmp, runDir, ["task.on_bad_line=skip"]);
    assert.match(log, /train\.jsonl:3: not JSON/);
    assert.match(log, /train\.jsonl:5: field "answer" is required/);
    const written = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.deepEqual(written, JSON.parse(JSON.stringify(summary)));
    assert.equal(written.steps, 4);
    // 8 prompts were drawn (4 steps × 2) from 8 trainable problems a pass, 2 of which never fit.
    assert.equal(written.data.bad_lines, 2);
    assert.ok(written.data.rejected_prompts >= 2, JSON.stringify(written.data));
    assert.equal(written.data.truncated_prompts, 0);
  });
});

Deno.test("Trainer.run() with prompts.on_long_prompt: truncate keeps the long prompt's last tokens and counts it", async () => {
  await withDataset(async (tmp) => {
    const runDir = `${tmp}/run`;
    await train(tmp, runDir, [
      "task.on_bad_line=skip",
      "prompts.on_long_prompt=truncate",
      "prompts.max_prompt_tokens=120",
    ]);
    const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.ok(summary.data.truncated_prompts >= 1, JSON.stringify(summary.data));
    // The unencodable one is still rejected: there is nothing to cut.
    assert.ok(summary.data.rejected_prompts >= 1, JSON.stringify(summary.data));
  });
});
