/**
 * `deno.json` itself: every task says what it does, the lock file is frozen for every command,
 * and the processes of a training run get train's narrow permissions.
 */
import assert from "node:assert/strict";
import { RUN_PERMISSIONS } from "../../training/permissions.ts";
import { REPO_ROOT } from "../helpers.ts";

const DENO_JSON = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
const TASKS = DENO_JSON.tasks as Record<string, { description: string; command: string }>;

Deno.test("every deno.json task has a description, so a bare `deno task` lists them readably", () => {
  for (const [name, task] of Object.entries(TASKS)) {
    assert.equal(typeof task, "object", name);
    assert.ok(task.description.length >= 20, `${name}: "${task.description}"`);
    assert.ok(task.command.length > 0, name);
  }
});

Deno.test("deno.lock is frozen for every command: a changed import cannot rewrite it", () => {
  assert.deepEqual(DENO_JSON.lock, { path: "deno.lock", frozen: true });
});

Deno.test("train, actor and the NATS actors a run spawns have the same permissions, not --allow-all", async () => {
  const flags = (task: string) => TASKS[task]!.command.split(" ").filter((a) => a.startsWith("--"));
  assert.deepEqual(flags("train"), [...RUN_PERMISSIONS]);
  assert.deepEqual(flags("actor"), [...RUN_PERMISSIONS]);
  const placement = await Deno.readTextFile(`${REPO_ROOT}training/placement.ts`);
  assert.doesNotMatch(placement, /--allow-all/);
  assert.match(placement, /\.\.\.RUN_PERMISSIONS/);
});

Deno.test("the first run is free of installer noise: quiet deno run, build scripts decided", () => {
  for (const [name, task] of Object.entries(TASKS)) {
    if (task.command.startsWith("deno run")) {
      assert.ok(task.command.startsWith("deno run -q "), `${name}: ${task.command}`);
    }
  }
  // Never run: scripts that download prebuilt binaries (the tensorflow backend is built by
  // setup:tensorflow instead) or print an advert; denied, so Deno does not warn about them.
  assert.deepEqual(DENO_JSON.allowScripts, {
    deny: ["npm:@tensorflow/tfjs-node", "npm:@tensorflow/tfjs-node-gpu", "npm:core-js"],
  });
});
