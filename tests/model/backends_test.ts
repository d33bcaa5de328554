/**
 * The tensor backends compute the same thing. Each available backend runs the same forward,
 * backward and greedy generation (tests/fixtures/backend_pass.ts) in a process of its own
 * (tfjs' backend is global), and every number is compared to the cpu backend's.
 *
 * Tolerance: `|x - cpu| <= 1e-3 · max(1, |cpu|)` element-wise, that is absolute for values up
 * to 1 and relative above. Gradients are also held to a scale-free bound: per tensor,
 * `max |g - cpu| <= 1e-3 · max |cpu|`, so that small gradients are not compared loosely.
 *
 * webgpu runs when Deno finds an adapter (on a CPU-only host, Mesa's llvmpipe: `apt-get
 * install mesa-vulkan-drivers`); with `CI=true` or `MGRPO_REQUIRE_WEBGPU=1` (which .ci/run
 * sets once it installed Mesa) a missing adapter fails the test. `tensorflow` runs when
 * tfjs-node is installed, and is reported as unavailable otherwise.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend, probeWebGpu, TFJS_NODE_INSTALL } from "../../model/backend.ts";
import type { BackendPass } from "../fixtures/backend_pass.ts";
import { REPO_ROOT } from "../helpers.ts";

/** Element-wise `|x - ref| <= tol · max(1, |ref|)`; the largest difference, for the report. */
function maxDiff(x: readonly number[], ref: readonly number[], what: string, tol = 1e-3): number {
  assert.equal(x.length, ref.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(x[i]! - ref[i]!);
    assert.ok(
      Number.isFinite(x[i]!) && d <= tol * Math.max(1, Math.abs(ref[i]!)),
      `${what}[${i}]: ${x[i]} vs cpu ${ref[i]}`,
    );
    worst = Math.max(worst, d);
  }
  return worst;
}

/** Whether deno.json maps a tfjs-node package (`deno add npm:@tensorflow/tfjs-node`). */
async function tfjsNodeInImportMap(): Promise<boolean> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
  const imports = Object.keys(config.imports ?? {});
  return imports.includes("@tensorflow/tfjs-node") || imports.includes("@tensorflow/tfjs-node-gpu");
}

async function runPass(backend: string, threads = 1): Promise<BackendPass> {
  const dir = await Deno.makeTempDir({ prefix: "backend-pass-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      // The threaded wasm build writes worker scripts to TMPDIR: a folder of this test's own.
      env: { TMPDIR: dir },
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "tests/fixtures/backend_pass.ts",
        backend,
        `${dir}/pass.json`,
        String(threads),
      ],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `backend_pass.ts ${backend} failed:\n${stderr}`);
    return JSON.parse(await Deno.readTextFile(`${dir}/pass.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("every available backend computes cpu's forward, gradients and generations within 1e-3", async () => {
  const gpu = await probeWebGpu();
  const required = Deno.env.get("CI") === "true" || Deno.env.get("MGRPO_REQUIRE_WEBGPU") === "1";
  if (!gpu.available) {
    assert.ok(
      !required,
      `webgpu must be available in CI (.ci/run installs mesa-vulkan-drivers): current value is "${gpu.description}"`,
    );
  }
  const tensorflow = await tfjsNodeInImportMap();
  const runs: { label: string; backend: string; threads?: number }[] = [
    { label: "wasm", backend: "wasm" },
    { label: "wasm, 2 threads", backend: "wasm", threads: 2 },
    ...(gpu.available ? [{ label: `webgpu (${gpu.description})`, backend: "webgpu" }] : []),
    ...(tensorflow ? [{ label: "tensorflow", backend: "tensorflow" }] : []),
  ];
  const report = [
    ...(gpu.available ? [] : [`webgpu: not available (${gpu.description})`]),
    ...(tensorflow ? [] : ["tensorflow: not available (@tensorflow/tfjs-node is not installed)"]),
  ];

  const cpu = await runPass("cpu");
  assert.equal(cpu.backend, "cpu");
  assert.equal(cpu.leaked, 0, "cpu: tensors leaked");
  // The reference itself is a real computation: finite, non-zero gradients everywhere.
  assert.ok(Number.isFinite(cpu.loss) && cpu.gradNorm > 0.1, `cpu: grad norm ${cpu.gradNorm}`);
  assert.equal(Object.keys(cpu.grads).length, 2 * 12 + 2, "one gradient per parameter");
  for (const [name, g] of Object.entries(cpu.grads)) {
    assert.ok(g.some((x) => x !== 0), `cpu: zero gradient for "${name}"`);
  }

  for (const run of runs) {
    const r = await runPass(run.backend, run.threads);
    assert.equal(r.backend, run.backend);
    assert.equal(r.threads, run.threads ?? 0, `${run.label}: wasm threads`);
    assert.equal(r.leaked, 0, `${run.label}: tensors leaked`);
    const logits = maxDiff(r.logits, cpu.logits, `${run.label}: logits`);
    maxDiff([r.loss, r.gradNorm], [cpu.loss, cpu.gradNorm], `${run.label}: loss, grad norm`);
    let grads = 0, gradsRelative = 0;
    for (const [name, ref] of Object.entries(cpu.grads)) {
      const g = r.grads[name];
      assert.ok(g, `${run.label}: no gradient for "${name}"`);
      const d = maxDiff(g, ref, `${run.label}: grad "${name}"`);
      const scale = Math.max(...ref.map(Math.abs));
      assert.ok(d <= 1e-3 * scale, `${run.label}: grad "${name}": max diff ${d}, scale ${scale}`);
      grads = Math.max(grads, d);
      gradsRelative = Math.max(gradsRelative, d / scale);
    }
    let logprobs = 0;
    r.generations.forEach((gen, i) => {
      assert.deepEqual(gen.tokens, cpu.generations[i]!.tokens, `${run.label}: greedy tokens`);
      logprobs = Math.max(
        logprobs,
        maxDiff(gen.logprobs, cpu.generations[i]!.logprobs, `${run.label}: logprobs`),
      );
    });
    report.push(
      `${run.label}: max |diff| vs cpu: logits ${logits.toExponential(1)}, ` +
        `grads ${grads.toExponential(1)} (${gradsRelative.toExponential(1)} of the tensor's ` +
        `largest), sampled log-probs ${logprobs.toExponential(1)}`,
    );
  }
  console.log(report.join("\n"));
});

Deno.test("initBackend() rejects tensorflow without tfjs-node, naming the install command", async () => {
  if (await tfjsNodeInImportMap()) {
    // Installed here: then it must load (this process's backend is switched back after).
    assert.equal(await initBackend("tensorflow"), "tensorflow");
    await tf.setBackend("cpu");
    return;
  }
  const before = tf.getBackend();
  await assert.rejects(initBackend("tensorflow"), (e: Error) => {
    assert.match(
      e.message,
      /^Cannot load backend "tensorflow": @tensorflow\/tfjs-node is not installed/,
    );
    assert.ok(e.message.includes(TFJS_NODE_INSTALL), e.message);
    assert.match(e.message, /deno@2\.9\.6 add npm:@tensorflow\/tfjs-node@4\.22\.0/);
    assert.match(e.message, /downloads libtensorflow, so it needs network access/);
    return true;
  });
  assert.equal(tf.getBackend(), before, "a failed load leaves the backend as it was");
});

Deno.test('initBackend("auto") picks wasm here: no tfjs-node, and a software adapter is skipped', async () => {
  if (await tfjsNodeInImportMap()) return; // auto would rightly pick tensorflow
  const gpu = await probeWebGpu();
  if (/llvmpipe|lavapipe|softpipe|swiftshader/i.test(gpu.description)) {
    assert.ok(gpu.available && gpu.software, `"${gpu.description}" is a software adapter`);
  }
  if (gpu.available && !gpu.software) return; // a real GPU: auto would rightly pick webgpu
  // Its own process: this one's backend is shared with the other tests.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { initBackend } from "./model/backend.ts"; console.log(await initBackend("auto"));`,
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1), "wasm");
});
