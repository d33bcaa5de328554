/**
 * `deno task dashboard` as a user runs it: bad input is named with exit 2, and the server it
 * starts lists the runs given and stops on SIGTERM.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runTask } from "../helpers.ts";

const lines = (...records: unknown[]) => records.map((r) => JSON.stringify(r) + "\n").join("");

Deno.test("deno task dashboard names a RUN_DIR that is not a run and exits 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dashboard_cli_" });
  try {
    const missing = await runTask(["dashboard", `${dir}/nope`]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(
      missing.stderr.trim(),
      `Cannot show run folder "${dir}/nope": it does not exist`,
    );
    const empty = await runTask(["dashboard", dir]);
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(empty.stderr, /it holds no run \(no metrics\.jsonl or config\.yaml\)/);
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines({ step: 1 }) + "{oops\n");
    const bad = await runTask(["dashboard", dir]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      new RegExp(`^Cannot read "${dir}/metrics\\.jsonl": line 2 is not JSON`),
    );
    const host = await runTask(["dashboard", "--host", "0.0.0.0"]);
    assert.equal(host.code, 2);
    assert.match(host.stderr, /binds a loopback address only .*: current value is "0\.0\.0\.0"/);
    const port = await runTask(["dashboard", "--port", "http"]);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /Invalid value for --port/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task dashboard serves the runs it was given, read-only, until SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dashboard_cli_" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "dashboard", `${dir}/a`, `${dir}/b`],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  for (const name of ["a", "b"]) {
    await Deno.mkdir(`${dir}/${name}`);
    await Deno.writeTextFile(`${dir}/${name}/metrics.jsonl`, lines({ step: 1, kl: 0.5 }));
    await Deno.writeTextFile(`${dir}/${name}/config.yaml`, "algorithm: grpo\n");
  }
  const process = child.spawn();
  try {
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/dashboard: (\S+)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/) \(2 runs\)/.exec(text);
    assert.ok(m, text);
    const runs = await (await fetch(`${m[1]}api/runs`)).json();
    assert.deepEqual(runs.map((r: { name: string; algorithm: string }) => [r.name, r.algorithm]), [
      ["a", "grpo"],
      ["b", "grpo"],
    ]);
    const post = await fetch(`${m[1]}api/runs`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const page = await fetch(m[1]!);
    assert.match(await page.text(), /^<!doctype html>/i);
    process.kill("SIGTERM");
    while (!(await reader.read()).done) { /* to the end of its output */ }
    const stderr = await new Response(process.stderr).text();
    assert.equal((await process.status).code, 0, stderr);
  } finally {
    try {
      process.kill("SIGKILL");
    } catch { /* already exited */ }
    await Deno.remove(dir, { recursive: true });
  }
});
