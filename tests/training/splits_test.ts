/**
 * The synthetic task's splits: the held-out set, the dev split drawn like training problems,
 * and the unseen dev split whose math is kept out of training like the held-out set's.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../config/load.ts";
import { devProblems, heldOutProblems, problemKey, problemStream } from "../../data/arithmetic.ts";
import { loadConfig } from "../../training/config.ts";
import { arithmeticOptions, heldOut, loadTrainingTask } from "../../training/setup.ts";

const EMBEDDED = loadConfig(undefined);

Deno.test("heldOut(): task.dev_unseen_size 0 keeps out the held-out keys only, and the dev split as it was", () => {
  // The embedded default keeps 200 unseen dev problems out as well; the schema default is 0.
  assert.equal(EMBEDDED.task.dev_unseen_size, 200);
  const task = { ...EMBEDDED.task, dev_unseen_size: 0 };
  const options = arithmeticOptions(task);
  const held = heldOutProblems(1000, options);
  const { keys, problems } = heldOut(task, "dev");
  assert.deepEqual(keys, new Set(held.map(problemKey)));
  assert.deepEqual(problems, devProblems(1000, { ...options, exclude: keys }));
  assert.throws(() => heldOut(task, "dev_unseen"), /task.dev_unseen_size must be > 0/);
});

Deno.test("heldOut(): the unseen dev split is kept out of training, the dev split and the held-out set", async () => {
  const { task } = EMBEDDED;
  const options = arithmeticOptions(task);
  const heldKeys = new Set(heldOutProblems(1000, options).map(problemKey));
  const { problems: unseen, keys } = heldOut(task, "dev_unseen");
  const unseenKeys = unseen.map(problemKey);
  assert.equal(unseen.length, 200);
  assert.equal(new Set(unseenKeys).size, 200);
  assert.ok(unseenKeys.every((k) => !heldKeys.has(k)));
  assert.equal(keys.size, 1200);
  assert.ok(unseenKeys.every((k) => keys.has(k)));
  // The held-out set is the same with or without the unseen split.
  assert.deepEqual(
    heldOut(task, "heldout").problems,
    heldOut({ ...task, dev_unseen_size: 0 }, "heldout").problems,
  );
  // The dev split and a training stream (what PromptSource and sft draw from, with `keys`)
  // never hold its math: 20,000 draws cover every one of the 699 keys left to train on.
  assert.ok(heldOut(task, "dev").problems.every((p) => !keys.has(problemKey(p))));
  const stream = problemStream(0, { ...options, exclude: keys });
  const drawn = new Set<string>();
  for (let i = 0; i < 20_000; i++) drawn.add(problemKey(stream.next().value));
  assert.equal(drawn.size, 1899 - 1200);
  assert.ok(unseenKeys.every((k) => !drawn.has(k)));
  // train's own evaluation on it (eval.split: dev_unseen) takes its first eval_size problems.
  const evalTask = await loadTrainingTask(task, "dev_unseen");
  assert.deepEqual(evalTask.evalSet, unseen.slice(0, task.eval_size));
  assert.deepEqual(evalTask.keys, keys);
});

Deno.test("loadConfig() refuses eval.split dev_unseen without task.dev_unseen_size, naming the field", () => {
  const text = "eval:\n  split: dev_unseen\n";
  let error: unknown;
  try {
    loadConfig("configs/x.yaml", { text });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  assert.match(
    error.message,
    /line 2, field "eval.split" is dev_unseen, but task.dev_unseen_size is 0/,
  );
  const ok = loadConfig("configs/x.yaml", {
    text: "task:\n  dev_unseen_size: 200\neval:\n  split: dev_unseen\n",
  });
  assert.equal(ok.eval.split, "dev_unseen");
});
