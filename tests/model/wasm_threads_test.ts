import assert from "node:assert/strict";
import { initBackend } from "../../model/backend.ts";
import { probeComputation } from "../fixtures/wasm_threads_work.ts";
import { REPO_ROOT } from "../helpers.ts";

Deno.test("model.wasm_threads: 2 runs tfjs' threaded wasm build with the same results", async () => {
  await initBackend("wasm");
  const single = await probeComputation();
  // The threaded build's workers keep a process alive: it runs as its own process, with the
  // permissions deno task train has, and a TMPDIR of its own (it counts the worker-script
  // folders left there; other processes' runs must not count).
  const tmp = await Deno.makeTempDir({ prefix: "wasm-threads-test-" });
  const out = await new Deno.Command(Deno.execPath(), {
    env: { TMPDIR: tmp },
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "tests/fixtures/wasm_threads_probe.ts",
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(tmp, { recursive: true });
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const threaded = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.equal(threaded.backend, "wasm");
  assert.equal(threaded.threads, 2);
  assert.equal(threaded.leftovers, 0, "the worker scripts are removed once the backend is up");
  assert.ok(Math.abs(threaded.matmul - single.matmul) <= 1e-3 * Math.abs(single.matmul));
  assert.ok(Math.abs(threaded.logp - single.logp) < 1e-5, `${threaded.logp} vs ${single.logp}`);
  assert.ok(Math.abs(threaded.gradNorm - single.gradNorm) < 1e-4 * single.gradNorm);
});
