import assert from "node:assert/strict";
import { ConfigError } from "../../config/load.ts";
import { loadConfig } from "../../training/config.ts";
import { tensorBackends } from "../../config/schema.ts";

/** The message of the ConfigError `text` raises, failing the test otherwise. */
function refusal(text: string): string {
  try {
    loadConfig("x.yaml", { text });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("expected a ConfigError, nothing was thrown");
}

Deno.test("tensorBackends() falls back to model.backend for learner.backend and sampler.backend", () => {
  assert.deepEqual(tensorBackends(loadConfig("x.yaml", { text: "model:\n  backend: cpu\n" })), {
    learner: "cpu",
    sampler: "cpu",
  });
  const both = loadConfig("x.yaml", {
    text: "model:\n  backend: cpu\nlearner:\n  backend: webgpu\nsampler:\n  backend: webgpu\n",
  });
  assert.deepEqual(tensorBackends(both), { learner: "webgpu", sampler: "webgpu" });
  assert.equal(both.model.backend, "cpu", "model.backend is kept as written");
});

Deno.test("TrainConfigSchema refuses in-process learner and sampler backends that differ", () => {
  assert.equal(
    refusal("learner:\n  backend: wasm\nsampler:\n  backend: webgpu\n"),
    'Cannot load config "x.yaml": line 4, field "sampler.backend" differs from ' +
      'learner.backend ("wasm"), but both actors run in this process, which has one tensor ' +
      "backend: give learner.backend and sampler.backend the same value, or run the Sampler " +
      'apart (placement: { sampler: worker }): current value is "webgpu"',
  );
  // Only learner.backend written: the Sampler inherits model.backend, and the field written
  // is the one named.
  assert.match(
    refusal("model:\n  backend: cpu\nlearner:\n  backend: wasm\n"),
    /^Cannot load config "x\.yaml": line 4, field "learner\.backend" differs from sampler\.backend \("cpu"\), .*: current value is "wasm"$/,
  );
  // auto is not resolved here: it may pick another backend than the one named beside it.
  assert.match(
    refusal("learner:\n  backend: auto\nsampler:\n  backend: wasm\n"),
    /differs from learner\.backend \("auto"\), .*: current value is "wasm"$/,
  );
});

Deno.test("TrainConfigSchema accepts differing backends when the Sampler runs apart or remotely", () => {
  const worker = loadConfig("x.yaml", {
    text: "learner:\n  backend: wasm\nsampler:\n  backend: webgpu\nplacement:\n  sampler: worker\n",
  });
  assert.deepEqual(tensorBackends(worker), { learner: "wasm", sampler: "webgpu" });
  const remote = loadConfig("x.yaml", {
    text: "learner:\n  backend: cpu\nsampler:\n  backend: openai\n  openai:\n" +
      "    base_url: http://127.0.0.1:8000/v1\n",
  });
  // openai is no tensor backend: nothing to share with the Learner.
  assert.deepEqual(tensorBackends(remote), { learner: "cpu", sampler: undefined });
});
