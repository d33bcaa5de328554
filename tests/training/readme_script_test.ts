/** The README's "From TypeScript" script is `examples/train.ts`, and it trains. */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../helpers.ts";

Deno.test("the README shows examples/train.ts verbatim, in 15 lines at most", async () => {
  const script = await Deno.readTextFile(`${REPO_ROOT}examples/train.ts`);
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  assert.ok(readme.includes("```ts\n" + script + "```"), "README and examples/train.ts differ");
  assert.ok(script.trimEnd().split("\n").length <= 15);
});

Deno.test("examples/train.ts trains two steps with the Trainer and writes its checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "readme-script-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${REPO_ROOT}examples/train.ts`, dir],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
    }).output();
    const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, log);
    assert.match(log, new RegExp(`checkpoint ${dir}/checkpoint-2`));
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
    assert.equal(summary.steps, 2);
    assert.equal(typeof summary.accuracy_after, "number");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
