/**
 * Every task of `deno.json` run as a user runs it: `--help` works and lists every flag the task
 * accepts; an unknown flag is one line naming the known flags, exit 2, never a stack trace.
 * (The tasks that are Deno's own commands — test, check, bench:runtime — and the shell script
 * test:all are left out: their help is Deno's.)
 */
import assert from "node:assert/strict";
import { mapConcurrent, REPO_ROOT, runTask } from "../helpers.ts";

const TASKS = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks as Record<
  string,
  { command: string }
>;
const OURS = Object.entries(TASKS)
  .filter(([, t]) => t.command.startsWith("deno run"))
  .map(([name]) => name);

function task(name: string, ...args: string[]) {
  return runTask([name, ...args]);
}

Deno.test("every task's --help works and lists every flag it accepts", async () => {
  assert.ok(OURS.length >= 15, OURS.join(", "));
  // Each task is a process of its own; one per core.
  await mapConcurrent(OURS, async (name) => {
    const help = await task(name, "--help");
    assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
    assert.ok(
      help.stdout.startsWith(`Usage: deno task ${name}`),
      `${name} --help: ${help.stdout.slice(0, 200)}`,
    );
    // actor takes the actor's name first.
    const bad = await task(name, ...(name === "actor" ? ["sampler"] : []), "--no-such-flag");
    assert.equal(bad.code, 2, `${name} --no-such-flag: exit ${bad.code}: ${bad.stderr}`);
    const lines = bad.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `${name}: ${bad.stderr}`);
    const m = /^Unknown flag "--no-such-flag": known flags are (.+)$/.exec(lines[0]!);
    assert.ok(m, `${name}: ${lines[0]}`);
    for (const flag of m[1]!.split(", ")) {
      assert.match(help.stdout, new RegExp(`${flag}\\b`), `${name} --help does not list ${flag}`);
    }
  });
});
