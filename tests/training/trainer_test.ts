/**
 * `Trainer` runs of the smoke configs in this process on a tiny random-init model (or the
 * warm start): what a run writes (metrics, config, checkpoints, summary, its log lines), a
 * resume, reward modules and algorithm plug-ins from YAML, the three built-in algorithms.
 * `tests/cli/train_test.ts` checks the `deno task train` process itself.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadConfig } from "../../training/config.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import {
  assertClose,
  exists,
  makeTinyCheckpoint,
  metricsRecords,
  REPO_ROOT,
  writeThrowawayPlugin,
} from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";
import type { EvalResult, Trainer } from "../../training/trainer.ts";
import { evaluateCheckpointTwoTurn } from "../../training/evaluate.ts";
import { heldOut, resolveRepoPath } from "../../training/setup.ts";
import { readSamples } from "../../training/samples_file.ts";
import { groupAdvantages } from "../../algorithms/grpo/mod.ts";
import { LocalLoopControl } from "../../server/loop_control.ts";

/** Runs `fn` with a fresh temp folder holding a tiny random-init checkpoint; removes it after. */
async function withRun(fn: (tmp: string, init: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
  try {
    await fn(tmp, await makeTinyCheckpoint(`${tmp}/tiny-init`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The 2-step smoke run on the tiny random model, written to `runDir`. */
function smoke(init: string, runDir: string, sets: string[] = []) {
  return trainInProcess(runDir, "configs/smoke-grpo.yaml", [`model.init=${init}`, ...sets]);
}

/** The step records of a run (evaluation lines left out). */
async function stepLines(runDir: string): Promise<Record<string, number>[]> {
  return (await metricsRecords(runDir)).filter((l) => "reward/mean" in l);
}

const STEP_KEYS = [
  "step",
  "reward/mean",
  "accuracy",
  "loss/policy",
  "kl",
  "entropy",
  "clip_ratio/region_mean",
  "completions/mean_length",
  "time/sampler",
  "time/learner",
];

Deno.test("Trainer.run() runs the smoke config and writes metrics, config, a checkpoint and the evaluation table", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/smoke`;
    const { summary, log } = await smoke(init, runDir);

    const lines = await metricsRecords(runDir);
    const steps = lines.filter((l) => "reward/mean" in l);
    assert.deepEqual(steps.map((l) => l.step), [1, 2]);
    for (const line of steps) {
      for (const key of STEP_KEYS) {
        assert.ok(Number.isFinite(line[key]), `step ${line.step}: ${key} = ${line[key]}`);
      }
      assert.ok(line["time/sampler"]! > 0 && line["time/learner"]! > 0);
    }
    // 2 prompts × 4 generations, sampled by the policy of the previous step.
    assert.deepEqual(steps.map((l) => l["train/rows"]), [8, 8]);
    assert.deepEqual(steps.map((l) => l["policy_version/sampler"]), [0, 1]);
    // β = 0.04 against the initial policy: KL is 0 before the first update.
    assert.ok(Math.abs(steps[0]!["kl"]!) <= 1e-6);
    const evals = lines.filter((l) => "eval/accuracy" in l);
    assert.deepEqual(evals.map((l) => l.step), [0, 2]);
    assert.equal(lines.length, 4);
    // GRPO: the first answers alone, no guided correction (eval.correction: auto).
    for (const line of evals) {
      assert.deepEqual(Object.keys(line), [
        "step",
        "eval/accuracy",
        "eval/format_rate",
        "eval/mean_length",
      ]);
    }
    assert.ok(!/Acc@t2/.test(log));

    const config = loadConfig(`${runDir}/config.yaml`);
    assert.equal(config.run.steps, 2);
    assert.equal(config.run.name, "smoke-grpo");
    assert.equal(config.model.init, init);
    assert.equal(config.grpo.num_generations, 4);
    assert.equal(config.grpo.beta, 0.04);

    const checkpoint = await loadCheckpoint(`${runDir}/checkpoint-2`);
    assert.equal(checkpoint.model.numParameters, 4000);
    assert.equal(checkpoint.state.step, 2);
    assert.equal(checkpoint.state.policy_version, 2);
    assert.equal(checkpoint.state.optimizer_steps, 2);
    assert.ok(await exists(`${runDir}/checkpoint-2/optimizer.safetensors`));
    checkpoint.model.dispose();

    assert.match(log, /Held-out evaluation \(8 problems, greedy\):/);
    assert.match(log, /^policy +step +accuracy % +format % +mean tokens$/m);
    assert.match(log, /^before +0 +\d+\.\d +\d+\.\d +\d+\.\d$/m);
    assert.match(log, /^after +2 +\d+\.\d +\d+\.\d +\d+\.\d$/m);
    const written = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.deepEqual(written, JSON.parse(JSON.stringify(summary)));
    assert.equal(written.steps, 2);
    assert.equal(written.checkpoint, `${runDir}/checkpoint-2`);
  });
});

Deno.test("Trainer.run() of a resumed run continues from its latest checkpoint", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/smoke`;
    // The 2-step run, without the held-out evaluations to keep the test short.
    await smoke(init, runDir, ["eval.before=false", "eval.after=false"]);
    // `--resume runDir --steps 3`
    const { log } = await trainInProcess(runDir, undefined, ["run.steps=3"], { resume: true });

    const steps = await stepLines(runDir);
    assert.deepEqual(steps.map((l) => l.step), [1, 2, 3]);
    // The resumed sampler starts from the saved policy, version 2.
    assert.equal(steps[2]!["policy_version/sampler"], 2);
    const checkpoint = await loadCheckpoint(`${runDir}/checkpoint-3`);
    assert.equal(checkpoint.state.step, 3);
    assert.equal(checkpoint.state.policy_version, 3);
    assert.equal(checkpoint.state.optimizer_steps, 3);
    checkpoint.model.dispose();
    assert.equal(loadConfig(`${runDir}/config.yaml`).run.steps, 3);
    assert.match(log, new RegExp(`^resume: ${runDir}/checkpoint-2 \\(step 2\\)`, "m"));
    assert.ok(!/Held-out/.test(log), "the resumed run kept its config (no evaluation)");

    // Where it ran: one line per start, the resumed one from step 2.
    const env = (await Deno.readTextFile(`${runDir}/environment.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(env.map((e) => e.start_step), [0, 2]);
    for (const e of env) {
      assert.equal(e.deno, Deno.version.deno);
      assert.equal(e.tfjs, tf.version.tfjs);
      assert.equal(e.backend, "wasm");
      assert.equal(e.learner_backend, "wasm");
      assert.equal(e.sampler_backend, "wasm");
      assert.equal(e.wasm_threads, 1); // the in-process runs' model.wasm_threads
      assert.equal(e.cores, navigator.hardwareConcurrency);
      assert.deepEqual(e.placement, {});
      assert.ok(e.project === null || /^\S+$/.test(e.project), e.project); // git describe
      assert.ok(typeof e.cpu === "string" && e.cpu.length > 0);
    }
  });
});

Deno.test("Trainer.run() runs a reward function loaded from a path in the config", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/brevity`;
    await smoke(init, runDir, [
      "reward.functions=[{name: correct}, {name: format, weight: 0.1}, " +
      `{name: brevity, path: ${REPO_ROOT}examples/brevity_reward.ts, weight: 0.2}]`,
      "eval.before=false",
    ]);
    const steps = await stepLines(runDir);
    assert.equal(steps.length, 2);
    for (const line of steps) {
      for (const key of ["rewards/correct/mean", "rewards/format/mean", "rewards/brevity/mean"]) {
        assert.ok(key in line, `${key} missing`);
      }
      // reward = correct + 0.1 format + 0.2 brevity, averaged (brevity abstains on cut rows).
      assert.ok(line["reward/mean"]! >= line["rewards/correct/mean"]!);
      assert.equal(line["reward/skipped"], 0);
    }
  });
});

Deno.test("Trainer.run() runs the MGRPO smoke config and logs the self-correction metrics and samples", async () => {
  await withRun(async (tmp) => {
    const runDir = `${tmp}/smoke-mgrpo`;
    let trainer: Trainer | undefined;
    // Not the random model but the warm start: it answers some prompts right, so some q'_i
    // groups are kept and others discarded.
    await trainInProcess(runDir, "configs/smoke-mgrpo.yaml", [], {
      started: (t) => (trainer = t),
    });
    const steps = await stepLines(runDir);
    assert.deepEqual(steps.map((l) => l.step), [1, 2]);
    for (const line of steps) {
      for (
        const key of [
          "mgrpo/acc_t1",
          "mgrpo/acc_t1_prime",
          "mgrpo/delta_i_to_c",
          "mgrpo/delta_c_to_i",
          "mgrpo/discarded_frac",
          "layer2/reward/mean",
          "layer2/train/rows",
          ...STEP_KEYS,
        ]
      ) {
        assert.ok(Number.isFinite(line[key]), `step ${line.step}: ${key} = ${line[key]}`);
      }
      // Acc@t1 is the Layer-1 accuracy the Learner logs; Acc@t1' - Acc@t1 = Δi→c - Δc→i.
      assert.equal(line["mgrpo/acc_t1"], line["accuracy"]);
      const identity = line["mgrpo/acc_t1_prime"]! - line["mgrpo/acc_t1"]! -
        (line["mgrpo/delta_i_to_c"]! - line["mgrpo/delta_c_to_i"]!);
      assert.ok(Math.abs(identity) < 1e-9);
      // 2 prompts × G = 4 responses, each corrected H = 2 times.
      assert.equal(line["mgrpo/n_groups"], 8);
    }

    // samples.jsonl: one line per step, its 2 prompts (all of them) with G = 4 answers each.
    const samples = await readSamples(runDir);
    assert.deepEqual(samples.map((l) => l.step), [1, 2]);
    const config = loadConfig(`${runDir}/config.yaml`);
    const all = samples.flatMap((l) => l.groups.flatMap((g) => g.completions));
    assert.ok(all.some((o) => o.discarded) && all.some((o) => !o.discarded));
    for (const [k, { step, groups }] of samples.entries()) {
      const line = steps[k]!;
      assert.equal(line["mgrpo/rejected_prompts"], 0, "every q'_i was sampled");
      assert.deepEqual(groups.map((g) => [g.step, g.completions.length]), [[step, 4], [step, 4]]);
      const answers = groups.flatMap((g) => g.completions);
      // The step's accuracy and discarded fraction are those of the answers shown.
      assert.equal(answers.filter((o) => o.correct).length / 8, line["accuracy"]);
      assert.equal(answers.filter((o) => o.discarded).length / 8, line["mgrpo/discarded_frac"]);
      for (const g of groups) {
        const advantages = groupAdvantages(g.completions.map((o) => o.reward!), 4, "group");
        g.completions.forEach((o, i) => assertClose(o.advantage!, advantages[i]!, 1e-6));
      }
      for (const o of answers) {
        assert.ok(config.mgrpo.guide_phrases.includes(o.guidePhrase!), o.guidePhrase);
        assert.equal(o.corrections!.length, 2);
        // The paper's selection: o_i wrong and both corrections wrong.
        assert.equal(o.discarded, !o.correct && o.corrections!.every((c) => !c.correct));
        const trained = o.corrections!.map((c) => c.advantage);
        if (o.discarded) {
          assert.deepEqual(trained, [null, null]);
        } else {
          const expected = groupAdvantages(o.corrections!.map((c) => c.reward!), 2, "group");
          trained.forEach((a, j) => assertClose(a!, expected[j]!, 1e-6));
        }
      }
      // Layer 2 trains on the corrections of the kept q'_i.
      assert.equal(
        answers.filter((o) => !o.discarded).length * 2,
        line["layer2/train/rows"],
      );
    }
    // GET /samples holds the last step's groups.
    assert.ok(trainer?.control instanceof LocalLoopControl);
    assert.deepEqual(trainer.control.control.samples(), samples[1]!.groups);
  });
});

/** The keys one guided correction adds to an evaluation line. */
const CORRECTION_KEYS = ["eval/acc_t2", "eval/delta_i_to_c", "eval/delta_c_to_i", "eval/mcnemar_p"];

/** `evaluateCheckpointTwoTurn` with `rounds: 1` (`deno task eval --two-turn --rounds 1`). */
async function offlineCorrection(checkpoint: string, runDir: string) {
  const config = loadConfig(`${runDir}/config.yaml`);
  // train evaluates the first task.eval_size problems of the held-out set.
  const problems = heldOut(config.task).problems;
  return await evaluateCheckpointTwoTurn(checkpoint, config, problems, { rounds: 1 });
}

Deno.test("Trainer.run() of MGRPO evaluates one guided correction, as deno task eval --two-turn --rounds 1 does on its checkpoints", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
  try {
    const runDir = `${tmp}/mgrpo`;
    // The embedded default (warm start, in_think, its three phrases), two small steps at a
    // learning rate that moves the policy, evaluated before, after step 1 and after.
    const results: Record<string, EvalResult> = {};
    const { log } = await trainInProcess(runDir, "configs/tiny-mgrpo.yaml", [
      "run.steps=2",
      "sampler.prompts_per_step=2",
      "grpo.num_generations=4",
      "mgrpo.num_corrections=2",
      "task.eval_size=24",
      "learner.lr=1e-3",
      "learner.warmup_ratio=0",
      "eval.every=1",
    ], { onEval: (label, _step, result) => (results[label] = result) });

    const evals = (await metricsRecords(runDir)).filter((l) => "eval/accuracy" in l);
    assert.deepEqual(evals.map((l) => l.step), [0, 1, 2]);
    for (const line of evals) {
      for (const key of CORRECTION_KEYS) {
        assert.ok(Number.isFinite(line[key]), `step ${line.step}: ${key} = ${line[key]}`);
      }
      // Acc@t2 − Acc@t1 = Δi→c − Δc→i, all fractions of the 24 problems.
      assertClose(
        line["eval/acc_t2"]! - line["eval/accuracy"]!,
        line["eval/delta_i_to_c"]! - line["eval/delta_c_to_i"]!,
        1e-12,
      );
      assert.ok(!("eval/correction_overflow" in line), "every correction prompt fits");
    }

    // Problem for problem, the figures of eval --two-turn --rounds 1 on the same problems:
    // the warm start before training, checkpoint-2 after.
    const config = loadConfig(`${runDir}/config.yaml`);
    for (
      const [label, checkpoint, line] of [
        ["before", resolveRepoPath(config.model.init), evals[0]!],
        ["after", `${runDir}/checkpoint-2`, evals[2]!],
      ] as const
    ) {
      const offline = await offlineCorrection(checkpoint, runDir);
      const c = results[label]!.correction!;
      assert.equal(c.n, 24);
      assert.deepEqual(c.t1, offline.result.verdicts.map((v) => v[0]), `${label}: t1`);
      assert.deepEqual(c.t2, offline.result.verdicts.map((v) => v[1]), `${label}: t2`);
      assert.equal(offline.result.overflow, 0);
      assert.deepEqual(
        [
          line["eval/accuracy"],
          line["eval/acc_t2"],
          line["eval/delta_i_to_c"],
          line["eval/delta_c_to_i"],
          line["eval/mcnemar_p"],
        ],
        [
          offline.correction.acc_t1,
          offline.correction.acc_t2,
          offline.correction.delta_i_to_c,
          offline.correction.delta_c_to_i,
          offline.correction.mcnemar_p,
        ],
        label,
      );
    }
    // Training moved the policy: the verdicts after differ from those before.
    assert.notDeepEqual(results["after"]!.correction!.t1, results["before"]!.correction!.t1);
    assert.ok(results["during"]!.correction);

    assert.match(
      log,
      /^policy +step +accuracy % +format % +mean tokens +Acc@t2 % +Δi→c +Δc→i +McNemar p$/m,
    );
    const after = evals[2]!;
    const pct = (k: string) => (100 * after[k]!).toFixed(1);
    assert.match(
      log,
      new RegExp(
        `^held-out accuracy after training, after one guided correction \\(Acc@t2\\): ` +
          `${pct("eval/acc_t2")}%, Δi→c ${pct("eval/delta_i_to_c")}%, ` +
          `Δc→i ${pct("eval/delta_c_to_i")}%, McNemar p \\S+ \\(24 problems, \\d+\\.\\d s\\)$`,
        "m",
      ),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** One small GRPO step, its evaluation after it with one guided correction, on 24 problems. */
const GRPO_EVAL_STEP = [
  "run.steps=1",
  "sampler.prompts_per_step=2",
  "grpo.num_generations=4",
  "task.eval_size=24",
  "eval.before=false",
  "eval.correction=true",
];

Deno.test("Trainer.run() with eval.correction true evaluates a GRPO run's correction and counts the prompts prompts.max_prompt_tokens rejects", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
  try {
    const runDir = `${tmp}/grpo`;
    // 90 tokens hold every first prompt (75–81 tokens) but not the answer and phrase after it.
    await trainInProcess(runDir, "configs/tiny-grpo.yaml", [
      ...GRPO_EVAL_STEP,
      "prompts.max_prompt_tokens=90",
    ]);
    const [line] = (await metricsRecords(runDir)).filter((l) => "eval/accuracy" in l);
    const offline = await offlineCorrection(`${runDir}/checkpoint-1`, runDir);
    assert.ok(offline.result.overflow > 0);
    assert.equal(line!["eval/correction_overflow"], offline.result.overflow);
    assert.ok(!("eval/correction_truncated" in line!));
    assert.equal(line!["eval/accuracy"], offline.correction.acc_t1);
    assert.equal(line!["eval/acc_t2"], offline.correction.acc_t2);
    assert.equal(line!["eval/delta_c_to_i"], offline.correction.delta_c_to_i);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer.run() cuts first prompts longer than prompts.max_prompt_tokens with truncate, as deno task eval does", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
  try {
    const runDir = `${tmp}/grpo`;
    // 70 tokens hold no first prompt (75–81 tokens): with truncate the run's own evaluation
    // keeps every problem and continues its prompt's last 70 tokens, as eval --two-turn does.
    const results: Record<string, EvalResult> = {};
    const { log } = await trainInProcess(runDir, "configs/tiny-grpo.yaml", [
      ...GRPO_EVAL_STEP,
      "prompts.max_prompt_tokens=70",
      "prompts.on_long_prompt=truncate",
    ], { onEval: (label, _step, result) => (results[label] = result) });
    assert.match(log, /eval: 24 held-out prompts cut to their last 70 tokens/);
    const offline = await offlineCorrection(`${runDir}/checkpoint-1`, runDir);
    assert.deepEqual(offline.result.first, { unpromptable: 0, truncated: 24, shortBudget: 0 });
    const c = results["after"]!.correction!;
    assert.equal(c.n, 24);
    assert.deepEqual(c.t1, offline.result.verdicts.map((v) => v[0]));
    assert.deepEqual(c.t2, offline.result.verdicts.map((v) => v[1]));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer.run() stops at the step that reaches run.max_sampled_tokens", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/budget`;
    const { summary } = await smoke(init, runDir, ["run.max_sampled_tokens=1", "eval.after=false"]);
    const steps = await stepLines(runDir);
    // One step of 2 prompts × 4 completions already samples more than 1 token.
    assert.deepEqual(steps.map((l) => l.step), [1]);
    const tokens = steps[0]!["completions/total_tokens"]!;
    assert.ok(tokens >= 8, `${tokens} tokens`);
    assert.equal(steps[0]!["tokens/sampled_total"], tokens);
    const written = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.equal(written.steps, 1);
    assert.equal(written.sampled_tokens, tokens);
    assert.equal(summary.sampled_tokens, tokens);
  });
});

Deno.test("Trainer.run() runs grpo, mgrpo and ppo from one YAML file by swapping algorithm", async () => {
  await withRun(async (tmp, init) => {
    for (const algorithm of ["grpo", "mgrpo", "ppo"]) {
      const runDir = `${tmp}/${algorithm}`;
      await smoke(init, runDir, [
        `algorithm=${algorithm}`,
        "eval.before=false",
        "eval.after=false",
      ]);
      const steps = await stepLines(runDir);
      assert.deepEqual(steps.map((l) => l.step), [1, 2], algorithm);
      const own: Record<string, string> = {
        grpo: "clip_ratio/region_mean",
        mgrpo: "mgrpo/acc_t1_prime",
        ppo: "value/explained_variance",
      };
      for (const line of steps) {
        assert.ok(own[algorithm]! in line, `${algorithm}: ${own[algorithm]}`);
      }
      // GRPO and MGRPO sample 2 prompts × 4; PPO 8 prompts × 1: the same 8 Layer-1 rows.
      assert.deepEqual(steps.map((l) => l["train/rows"]), [8, 8], algorithm);
    }
  });
});

Deno.test("Trainer.run() runs configs/smoke-ppo.yaml with the PPO metrics", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/ppo`;
    await trainInProcess(runDir, "configs/smoke-ppo.yaml", [`model.init=${init}`]);
    const steps = await stepLines(runDir);
    assert.equal(steps.length, 2);
    for (const line of steps) {
      for (
        const key of [
          "loss/policy",
          "loss/value",
          "value/explained_variance",
          "clip_ratio",
          "approx_kl",
          "ppo/kl_coef",
          "time/critic",
          "time/ref_policy",
        ]
      ) {
        assert.ok(key in line, `${key} missing`);
      }
      assert.equal(line["ppo/kl_coef"], 0.05);
    }
    // Two PPO epochs: the second pass sees a moved policy, so the ratio leaves 1.
    assert.ok(steps[0]!["approx_kl"]! > 0);
    // PPO's samples: prompts of one completion each, with the mean of its per-token GAE
    // advantages, and no corrections.
    const samples = await readSamples(runDir);
    const sizes = samples.map((l) => l.groups.map((g) => g.completions.length));
    assert.deepEqual(sizes, [[1, 1], [1, 1]]);
    const shown = samples.flatMap((l) => l.groups.flatMap((g) => g.completions));
    for (const o of shown) {
      assert.deepEqual(Object.keys(o), ["text", "reward", "advantage", "correct", "reason"]);
      assert.ok(Number.isFinite(o.advantage) && o.advantage !== 0, `${o.advantage}`);
    }
    assert.ok(await exists(`${runDir}/checkpoint-2/model.safetensors`));
    const first = await loadCheckpoint(`${runDir}/checkpoint-2`);
    // 2 steps × 2 PPO epochs, one optimizer step each.
    assert.equal(first.state.optimizer_steps, 4);
    first.model.dispose();

    // Two mini-batches per epoch: twice the optimizer steps.
    await trainInProcess(`${tmp}/mini`, "configs/smoke-ppo.yaml", [
      `model.init=${init}`,
      "ppo.num_mini_batches=2",
      "eval.before=false",
    ]);
    const second = await loadCheckpoint(`${tmp}/mini/checkpoint-2`);
    assert.equal(second.state.optimizer_steps, 8);
    second.model.dispose();
  });
});

Deno.test("Trainer.run() runs an algorithm registered from a file path in YAML for two steps", async () => {
  await withRun(async (tmp, init) => {
    await writeThrowawayPlugin(tmp);
    const runDir = `${tmp}/run`;
    const { log } = await trainInProcess(runDir, `${tmp}/throwaway.yaml`, [`model.init=${init}`]);
    assert.match(log, /^THROWAWAY on arithmetic: model .*tiny-init \(4,000 parameters, wasm\)/m);
    const steps = await stepLines(runDir);
    assert.deepEqual(steps.map((l) => l.step), [1, 2]);
    for (const line of steps) assert.ok("clip_ratio/region_mean" in line);
    const resolved = await Deno.readTextFile(`${runDir}/config.yaml`);
    assert.match(resolved, /^throwaway:\n {2}epsilon: 0\.3\n {2}loss_type: dapo$/m);
  });
});
