/**
 * `deno task sft`'s Layer-2 data knobs: a share that is not a share is refused before any
 * training, and the default share of wrong answers before the guide phrase draws the same data
 * as naming it, so the committed warm starts' commands still reproduce them.
 */
import assert from "node:assert/strict";
import { mapConcurrent, REPO_ROOT, runTask, withTempDir } from "../helpers.ts";

/** `deno task sft` with one wasm thread, as a user runs it. */
function sft(...args: string[]) {
  return runTask(["sft", "--set", "model.wasm_threads=1", ...args]);
}

async function sha(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Two steps of counted Layer-2 examples only, evaluated on 4 dev problems. */
const COUNT_RUN = [
  "--layer2-target",
  "count",
  "--layer2-frac",
  "1",
  "--sft-steps",
  "2",
  "--stop-at",
  "2",
  "--eval-every",
  "100",
  "--set",
  "task.eval_size=4",
];

/** The `trainer_state.json` of run i of {@linkcode digests}. */
function runState(tmp: string, i: number) {
  return JSON.parse(Deno.readTextFileSync(`${tmp}/run-${i}/trainer_state.json`));
}

/**
 * Trains one short run per flag list into `tmp/run-<i>` and returns each weights' digest. The
 * runs are single-threaded and independent, so they go one per core.
 */
function digests(tmp: string, base: string[], runs: string[][]): Promise<string[]> {
  return mapConcurrent(runs, async (extra, i) => {
    const res = await sft(...base, ...extra, "--out", `${tmp}/run-${i}`);
    assert.equal(res.code, 0, res.stderr);
    return await sha(`${tmp}/run-${i}/model.safetensors`);
  });
}

for (const flag of ["--layer2-wrong-share", "--flip-share"]) {
  Deno.test(`sft.ts refuses ${flag} outside [0, 1] with exit 2, writing nothing`, () =>
    withTempDir("sft_test_", async (tmp) => {
      const res = await sft(flag, "1.5", "--out", `${tmp}/out`);
      assert.equal(res.code, 2, res.stderr);
      assert.match(
        res.stderr,
        new RegExp(`Invalid value for ${flag}: must be in \\[0, 1\\]: current value is 1.5`),
      );
      assert.deepEqual([...Deno.readDirSync(tmp)], []);
    }));
}

Deno.test("sft.ts refuses an unknown --count-form with exit 2, writing nothing", () =>
  withTempDir("sft_test_", async (tmp) => {
    const res = await sft(
      "--layer2-target",
      "count",
      "--count-form",
      "tally",
      "--out",
      `${tmp}/out`,
    );
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /Invalid value for --count-form: must be "plain", "carry", "operands" or "letters": current value is "tally"/,
    );
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
  }));

Deno.test("sft.ts --layer2-wrong-share 0.5 (the default) trains on the same data as leaving it out; 0.9 on other data", () =>
  withTempDir("sft_test_", async (tmp) => {
    const base = [
      "--layer2-frac",
      "0.5",
      "--sft-steps",
      "3",
      "--stop-at",
      "3",
      "--eval-every",
      "100",
    ];
    const runs = [[], ["--layer2-wrong-share", "0.5"], ["--layer2-wrong-share", "0.9"]];
    const [omitted, half, most] = await digests(tmp, base, runs);
    assert.equal(half, omitted);
    assert.notEqual(most, omitted);
  }));

Deno.test("sft.ts --flip-share 0 (the default) trains on the same data as leaving it out; 0.5 on other data, recorded in the checkpoint", () =>
  withTempDir("sft_test_", async (tmp) => {
    const runs = [[], ["--flip-share", "0"], ["--flip-share", "0.5"]];
    const [omitted, zero, half] = await digests(tmp, COUNT_RUN, runs);
    assert.equal(zero, omitted);
    assert.notEqual(half, omitted);
    assert.equal(runState(tmp, 0).flip_share, undefined);
    assert.equal(runState(tmp, 2).flip_share, 0.5);
  }));

Deno.test("sft.ts refuses a --flip-phrase outside mgrpo.guide_phrases with exit 2, writing nothing", () =>
  withTempDir("sft_test_", async (tmp) => {
    const res = await sft("--flip-phrase", "Wait, let me check", "--out", `${tmp}/out`);
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /Invalid value for --flip-phrase: must be one of mgrpo\.guide_phrases \("Wait, let me check\.", "Let me recheck\.", "Hmm, check again\."\): current value is "Wait, let me check"/,
    );
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
  }));

Deno.test("sft.ts --flip-phrase trains on other data than leaving it out, each phrase its own, recorded in the checkpoint", () =>
  withTempDir("sft_test_", async (tmp) => {
    const runs = [
      [],
      ["--flip-phrase", "Hmm, check again."],
      ["--flip-phrase", "Let me recheck."],
      ["--flip-phrase", "Hmm, check again.", "--flip-phrase", "Let me recheck."],
    ];
    const all = await digests(tmp, COUNT_RUN, runs);
    assert.equal(new Set(all).size, 4);
    assert.equal(runState(tmp, 0).flip_phrases, undefined);
    assert.deepEqual(runState(tmp, 3).flip_phrases, ["Hmm, check again.", "Let me recheck."]);
  }));

Deno.test("sft.ts --count-form plain (the default) trains on the same data as leaving it out; carry, operands and letters each on other data, the recipe recorded in the checkpoint", () =>
  withTempDir("sft_test_", async (tmp) => {
    const runs = [
      [],
      ["--count-form", "plain"],
      ["--count-form", "carry"],
      ["--count-form", "operands"],
      ["--count-form", "letters"],
    ];
    const all = await digests(tmp, COUNT_RUN, runs);
    assert.equal(all[1], all[0]);
    assert.equal(new Set(all).size, 4);
    const { layer2_target, count_share, count_form, layer2_frac, layer2_wrong_share } = runState(
      tmp,
      4,
    );
    assert.deepEqual(
      { layer2_target, count_share, count_form, layer2_frac, layer2_wrong_share },
      {
        layer2_target: "count",
        count_share: 1,
        count_form: "letters",
        layer2_frac: 1,
        layer2_wrong_share: 0.5,
      },
    );
    assert.equal(runState(tmp, 0).count_form, "plain");
  }));

Deno.test("sft.ts --init continues a checkpoint of ours, recording its folder and its weights' hash; a folder that is not one exits 2, writing nothing", () =>
  withTempDir("sft_test_", async (tmp) => {
    const bad = await sft("--init", `${tmp}/none`, "--out", `${tmp}/out`);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Invalid value for --init: Cannot load checkpoint ".*none"/);
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
    const args = ["--layer2-frac", "0", "--correction-frac", "0", "--sft-steps", "2"];
    const res = await sft(
      "--init",
      "checkpoints/tiny-sft",
      ...args,
      "--stop-at",
      "2",
      "--eval-every",
      "100",
      "--out",
      `${tmp}/cont`,
    );
    assert.equal(res.code, 0, res.stderr);
    const state = JSON.parse(await Deno.readTextFile(`${tmp}/cont/trainer_state.json`));
    // The folder as the repository names it, and the hash of the weights it started from.
    assert.equal(state.init, "checkpoints/tiny-sft");
    assert.equal(
      state.init_sha256,
      await sha(`${REPO_ROOT}checkpoints/tiny-sft/model.safetensors`),
    );
    assert.equal(state.step, 2);
    // The default target redoes the chain; no count, so no count settings are recorded.
    assert.equal(state.layer2_target, "recompute");
    assert.equal(state.count_share, undefined);
    assert.equal(
      await Deno.readTextFile(`${tmp}/cont/config.json`),
      await Deno.readTextFile(`${REPO_ROOT}checkpoints/tiny-sft/config.json`),
    );
    assert.notEqual(
      await sha(`${tmp}/cont/model.safetensors`),
      await sha(`${REPO_ROOT}checkpoints/tiny-sft/model.safetensors`),
    );
  }));

Deno.test("sft.ts draws another problem in place of an example longer than the context, and counts them", () =>
  withTempDir("sft_test_", async (tmp) => {
    // Counted checks of three operations on operands up to 15 run to ~270 characters, past the
    // tiny model's 256 positions; two operations up to 9 always fit.
    const long = await sft(
      ...COUNT_RUN,
      "--set",
      "task.max_steps=3",
      "--set",
      "task.max_operand=15",
      "--out",
      `${tmp}/long`,
    );
    assert.equal(long.code, 0, long.stderr);
    const m = long.stdout.match(
      /(\d+) examples longer than the context \(256 tokens\) were drawn again/,
    );
    assert.ok(m, long.stdout);
    const n = Number(m[1]);
    assert.ok(n > 0);
    const state = JSON.parse(await Deno.readTextFile(`${tmp}/long/trainer_state.json`));
    assert.equal(state.too_long_examples, n);
    const short = await sft(...COUNT_RUN, "--out", `${tmp}/short`);
    assert.equal(short.code, 0, short.stderr);
    assert.doesNotMatch(short.stdout, /longer than the context/);
    const shortState = JSON.parse(await Deno.readTextFile(`${tmp}/short/trainer_state.json`));
    assert.equal(shortState.too_long_examples, undefined);
  }));
