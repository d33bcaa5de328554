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
 * install mesa-vulkan-drivers`); with `CI=true` or `MGRPO_REQUIRE_WEBGPU=1` (which deno task test:all
 * sets once it installed Mesa) a missing adapter fails the test. `tensorflow` runs when
 * `deno task setup:tensorflow` has built tfjs-node's addon; with `CI=true` or
 * `MGRPO_REQUIRE_TENSORFLOW=1` (which the test command sets once it built it) a missing one
 * fails the test, else it is reported as unavailable.
 */
import assert from "node:assert/strict";
import { TFJS_NODE_INSTALL, type WebGpuProbe } from "../../model/backend.ts";
import type { BackendPass } from "../fixtures/backend_pass.ts";
import { REPO_ROOT, tensorflowReady } from "../helpers.ts";

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

/** CI and the test command require the tensorflow backend; a plain `deno task test` does not. */
function tensorflowRequired(): boolean {
  return Deno.env.get("CI") === "true" || Deno.env.get("MGRPO_REQUIRE_TENSORFLOW") === "1";
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
        "--allow-ffi", // the tensorflow backend's Node-API addon
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
  const gpu = await probeGpu();
  const required = Deno.env.get("CI") === "true" || Deno.env.get("MGRPO_REQUIRE_WEBGPU") === "1";
  if (!gpu.available) {
    assert.ok(
      !required,
      `webgpu must be available in CI (deno task test:all installs mesa-vulkan-drivers): current value is "${gpu.description}"`,
    );
  }
  const tensorflow = await tensorflowReady();
  assert.ok(
    tensorflow || !tensorflowRequired(),
    `the tensorflow backend must be set up in CI: run ${TFJS_NODE_INSTALL}`,
  );
  const runs: { label: string; backend: string; threads?: number }[] = [
    { label: "wasm", backend: "wasm" },
    { label: "wasm, 2 threads", backend: "wasm", threads: 2 },
    ...(gpu.available ? [{ label: `webgpu (${gpu.description})`, backend: "webgpu" }] : []),
    ...(tensorflow ? [{ label: "tensorflow", backend: "tensorflow" }] : []),
  ];
  const report = [
    ...(gpu.available ? [] : [`webgpu: not available (${gpu.description})`]),
    ...(tensorflow ? [] : ["tensorflow: not available (deno task setup:tensorflow has not run)"]),
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

/**
 * `probeWebGpu()` in a process of its own: Mesa's software Vulkan driver, once loaded, stays in a
 * process until it exits, and its teardown at the exit of the long-lived test process has been
 * seen to corrupt the heap (glibc's abort after every test passed). Only short-lived processes
 * load it.
 */
async function probeGpu(): Promise<WebGpuProbe> {
  const r = await evalInProcess(
    `import { probeWebGpu } from "./model/backend.ts"; console.log(JSON.stringify(await probeWebGpu()));`,
  );
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.last);
}

/** Runs `code` in a fresh Deno process with the tasks' permissions; its last line of output. */
async function evalInProcess(code: string): Promise<{ code: number; last: string; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${REPO_ROOT}deno.json`, code],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return {
    code: out.code,
    last: text.split("\n").at(-1) ?? "",
    err: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("initBackend('tensorflow') loads the built addon quietly, or names the set-up command", async () => {
  // Its own process: this one's backend is shared with the other tests, and the WebGPU probe
  // of the first test would (rightly) make tensorflow refuse to load here.
  const r = await evalInProcess(`
    import { initBackend } from "./model/backend.ts";
    import * as tf from "@tensorflow/tfjs";
    try {
      const name = await initBackend("tensorflow");
      const y = await tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).data();
      console.log(JSON.stringify({ name, y: y[0] }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.message }));
    }`);
  assert.equal(r.code, 0, r.err);
  const result = JSON.parse(r.last);
  if (await tensorflowReady()) {
    assert.deepEqual(result, { name: "tensorflow", y: 11 });
    // TensorFlow's start-up lines (oneDNN, "Could not find cuda drivers") are quieted.
    assert.doesNotMatch(r.err, /cuda|oneDNN|absl/i, r.err);
  } else {
    assert.match(result.error, /^Cannot load backend "tensorflow": .*tfjs-node is not set up/);
    assert.ok(result.error.includes(TFJS_NODE_INSTALL), result.error);
  }
});

Deno.test("tensorflow refuses to load after WebGPU started in the process (it would crash)", async () => {
  // libtensorflow loaded after Mesa's Vulkan driver segfaults; the backend refuses instead.
  const r = await evalInProcess(`
    import { initBackend, probeWebGpu } from "./model/backend.ts";
    const gpu = await probeWebGpu();
    try {
      console.log(JSON.stringify({ gpu: gpu.description, name: await initBackend("tensorflow") }));
    } catch (e) {
      console.log(JSON.stringify({ gpu: gpu.description, error: e.message }));
    }`);
  assert.equal(r.code, 0, `the process must not crash:\n${r.err}`);
  const result = JSON.parse(r.last);
  if (result.gpu === "no navigator.gpu") return; // this Deno has no WebGPU at all
  assert.match(result.error, /WebGPU has already started in this process/);
  assert.match(result.error, /start tensorflow first/);
});

Deno.test("tensorflow started first, then webgpu, works in one process", async () => {
  if (!await tensorflowReady()) return;
  const gpu = await probeGpu();
  if (!gpu.available) return;
  const r = await evalInProcess(`
    import { initBackend } from "./model/backend.ts";
    const a = await initBackend("tensorflow");
    const b = await initBackend("webgpu");
    console.log(JSON.stringify([a, b]));`);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.last), ["tensorflow", "webgpu"]);
});

Deno.test('initBackend("auto") picks tensorflow when set up, else wasm over a software adapter', async () => {
  if (await tensorflowReady()) {
    const r = await evalInProcess(
      `import { initBackend } from "./model/backend.ts"; console.log(await initBackend("auto"));`,
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.last, "tensorflow");
    return;
  }
  const gpu = await probeGpu();
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
