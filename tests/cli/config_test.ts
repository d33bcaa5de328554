/**
 * `deno task config`: the config reference from the schema itself, and `docs/configuration.md`
 * holding its current Markdown form.
 */
import assert from "node:assert/strict";
import { BEGIN_MARK, configMarkdown, END_MARK } from "../../cli/config.ts";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import { configReference } from "../../config/describe.ts";
import { REPO_ROOT, runTask } from "../helpers.ts";

Deno.test("docs/configuration.md holds the current reference (deno task config --write updates it)", async () => {
  const doc = await Deno.readTextFile(`${REPO_ROOT}docs/configuration.md`);
  const start = doc.indexOf(BEGIN_MARK) + BEGIN_MARK.length, end = doc.indexOf(END_MARK);
  assert.ok(start > BEGIN_MARK.length && end > start, "the markers are in place");
  assert.equal(
    doc.slice(start, end).trim(),
    (await configMarkdown()).trim(),
    "docs/configuration.md is out of date: run deno task config --write",
  );
});

Deno.test("configReference() lists every field of the schema with a type, a default and a description", () => {
  const sections = configReference(TrainConfigSchema);
  const fields = sections.flatMap((s) => s.fields);
  assert.ok(fields.length > 120, `${fields.length} fields`);
  for (const f of fields) {
    assert.ok(f.description.length > 0, `${f.field} has no description`);
    assert.ok(f.type.length > 0 && f.default.length > 0, f.field);
  }
  const byName = new Map(fields.map((f) => [f.field, f]));
  assert.deepEqual(byName.get("grpo.scale_rewards"), {
    field: "grpo.scale_rewards",
    type: '"group" | "batch" | "none"',
    default: '"group"',
    description: byName.get("grpo.scale_rewards")!.description,
  });
  assert.equal(byName.get("run.steps")!.type, "integer ≥ 1");
  assert.equal(byName.get("mgrpo.layer2_temperature")!.default, "unset");
  assert.equal(byName.get("control.allowed_hosts")!.type, "list of string");
  // Nested objects are flattened to dotted paths.
  assert.equal(byName.get("model.lora.r")!.default, "0");
});

Deno.test("deno task config filters by algorithm and adds the sections of a config's plug-ins", async () => {
  const ppo = await configMarkdown(undefined, "ppo");
  assert.match(ppo, /### `ppo`/);
  assert.match(ppo, /### `grpo`/); // PPO reads grpo.num_generations
  assert.doesNotMatch(ppo, /### `mgrpo`/);
  assert.match(ppo, /### `learner`/);
  const tmp = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(tmp, "plugins: [algorithms/rloo/mod.ts]\nalgorithm: rloo\n");
    const withPlugin = await configMarkdown(tmp);
    assert.match(withPlugin, /### `rloo`/);
    assert.match(withPlugin, /`rloo\.\w+`/);
    const out = await runTask(["config", "--config", tmp, "--algorithm", "rloo"]);
    const text = out.stdout;
    assert.equal(out.code, 0, out.stderr);
    assert.match(text, /^run: /m);
    assert.match(text, /^rloo/m);
    assert.doesNotMatch(text, /^mgrpo/m);
  } finally {
    await Deno.remove(tmp);
  }
});
