import assert from "node:assert/strict";
import { loadConfig } from "../../training/config.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import { initBackend } from "../../model/backend.ts";
import { exists, makeTinyCheckpoint, REPO_ROOT } from "../helpers.ts";

await initBackend("wasm");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run cli/train.ts ...args` from the repository root. */
async function train(...args: string[]): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "cli/train.ts", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

async function readMetrics(runDir: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

/** Runs `fn` with a fresh temp folder holding a tiny random-init checkpoint; removes it after. */
async function withRun(fn: (tmp: string, init: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "train_test_" });
  try {
    await fn(tmp, await makeTinyCheckpoint(`${tmp}/tiny-init`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The 2-step smoke run on the tiny random model, written to `runDir`. */
function smoke(init: string, runDir: string, ...extra: string[]): Promise<Result> {
  return train(
    "--config",
    "configs/smoke-grpo.yaml",
    "--set",
    `model.init=${init}`,
    "--run-dir",
    runDir,
    ...extra,
  );
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

Deno.test("train.ts runs the smoke config and writes metrics, config and a checkpoint", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/smoke`;
    const result = await smoke(init, runDir);
    assert.equal(result.code, 0, result.stderr);

    const lines = await readMetrics(runDir);
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

    assert.match(result.stdout, /Held-out evaluation \(8 problems, greedy\):/);
    assert.match(result.stdout, /^policy +step +accuracy % +format % +mean tokens$/m);
    assert.match(result.stdout, /^before +0 +\d+\.\d +\d+\.\d +\d+\.\d$/m);
    assert.match(result.stdout, /^after +2 +\d+\.\d +\d+\.\d +\d+\.\d$/m);
    const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.equal(summary.steps, 2);
    assert.equal(summary.checkpoint, `${runDir}/checkpoint-2`);
  });
});

Deno.test("train.ts --resume continues a run from its latest checkpoint", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/smoke`;
    // The 2-step run, without the held-out evaluations to keep the test short.
    const noEval = ["--set", "eval.before=false", "--set", "eval.after=false"];
    const first = await smoke(init, runDir, ...noEval);
    assert.equal(first.code, 0, first.stderr);
    const result = await train("--resume", runDir, "--steps", "3");
    assert.equal(result.code, 0, result.stderr);

    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
    assert.deepEqual(steps.map((l) => l.step), [1, 2, 3]);
    // The resumed sampler starts from the saved policy, version 2.
    assert.equal(steps[2]!["policy_version/sampler"], 2);
    const checkpoint = await loadCheckpoint(`${runDir}/checkpoint-3`);
    assert.equal(checkpoint.state.step, 3);
    assert.equal(checkpoint.state.policy_version, 3);
    assert.equal(checkpoint.state.optimizer_steps, 3);
    checkpoint.model.dispose();
    assert.equal(loadConfig(`${runDir}/config.yaml`).run.steps, 3);
    assert.ok(!/Held-out/.test(result.stdout), "the resumed run kept its config (no evaluation)");
  });
});

Deno.test("train.ts exits 2 with the config error and starts no run for a bad config", async () => {
  await withRun(async (tmp, init) => {
    const cases: [string, string[], string][] = [
      [
        "wrong type",
        ["--config", `${tmp}/wrong_type.yaml`],
        `Cannot load config "${tmp}/wrong_type.yaml": line 4, field "learner.lr" must be a number: current value is "fast"`,
      ],
      [
        "unknown field",
        ["--config", `${tmp}/unknown_field.yaml`],
        `Cannot load config "${tmp}/unknown_field.yaml": line 4, field "learner.learning_rate" is not a known field: known fields are "lr", "lr_schedule", "warmup_ratio", "min_lr_ratio", "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "max_consecutive_skips", "max_grad_norm", "micro_batch_size", "gradient_checkpointing", "backend"`,
      ],
      [
        "negative lr in the file",
        ["--config", `${tmp}/negative_lr.yaml`],
        `Cannot load config "${tmp}/negative_lr.yaml": line 4, field "learner.lr" must be > 0: current value is -1`,
      ],
      [
        "missing reward module",
        [
          "--config",
          "configs/smoke-grpo.yaml",
          "--set",
          "reward.functions=[{name: mine, path: examples/nope.ts}]",
        ],
        `Cannot load config "configs/smoke-grpo.yaml": field "reward.functions.0.path" cannot be imported: `,
      ],
      [
        "negative lr from --set",
        ["--config", "configs/smoke-grpo.yaml", "--set", "learner.lr=-1"],
        `Cannot load config "configs/smoke-grpo.yaml": --set learner.lr=-1: field "learner.lr" must be > 0: current value is -1`,
      ],
    ];
    await Deno.writeTextFile(
      `${tmp}/wrong_type.yaml`,
      'run:\n  steps: 2\nlearner:\n  lr: "fast"\n',
    );
    await Deno.writeTextFile(
      `${tmp}/unknown_field.yaml`,
      "run:\n  steps: 2\nlearner:\n  learning_rate: 0.1\n",
    );
    await Deno.writeTextFile(`${tmp}/negative_lr.yaml`, "run:\n  steps: 2\nlearner:\n  lr: -1\n");
    for (const [name, args, message] of cases) {
      const runDir = `${tmp}/never-${name.replaceAll(" ", "-")}`;
      const result = await train(...args, "--set", `model.init=${init}`, "--run-dir", runDir);
      assert.equal(result.code, 2, `${name}: ${result.stderr}`);
      if (message.endsWith(": ")) assert.ok(result.stderr.startsWith(message), result.stderr);
      else assert.equal(result.stderr, `${message}\n`, name);
      assert.equal(result.stdout, "", name);
      assert.equal(await exists(runDir), false, `${name}: the run directory was created`);
    }
  });
});

Deno.test("train.ts runs a reward function loaded from a path in the config", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/brevity`;
    const result = await smoke(
      init,
      runDir,
      "--set",
      "reward.functions=[{name: correct}, {name: format, weight: 0.1}, {name: brevity, path: examples/brevity_reward.ts, weight: 0.2}]",
      "--set",
      "eval.before=false",
    );
    assert.equal(result.code, 0, result.stderr);
    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
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

Deno.test("train.ts --help lists the flags and exits 0", async () => {
  const result = await train("--help");
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  assert.match(result.stdout, /^Usage: deno task train \[flags\]$/m);
  for (
    const flag of [
      "--config FILE",
      "--set KEY=VALUE",
      "--run-dir DIR",
      "--steps N",
      "--seed N",
      "--resume DIR",
    ]
  ) {
    assert.match(result.stdout, new RegExp(`^  ${flag} +\\S`, "m"), flag);
  }
});

Deno.test("train.ts exits 2 for an unknown flag", async () => {
  const result = await train("--stepz", "3");
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^Unknown flag "--stepz": known flags are --config, --set, /);
});

Deno.test("train.ts --resume fails on a folder without checkpoints and writes nothing", async () => {
  await withRun(async (tmp) => {
    const empty = `${tmp}/empty-run`;
    await Deno.mkdir(empty);
    const result = await train("--resume", empty, "--steps", "3");
    assert.notEqual(result.code, 0);
    assert.equal(
      result.stderr,
      `Cannot resume from "${empty}": no checkpoint-<step> folder in it\n`,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(empty)), []);
  });
});

Deno.test("train.ts runs the MGRPO smoke config and logs the self-correction metrics", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/smoke-mgrpo`;
    const result = await train(
      "--config",
      "configs/smoke-mgrpo.yaml",
      "--set",
      `model.init=${init}`,
      "--run-dir",
      runDir,
    );
    assert.equal(result.code, 0, result.stderr);
    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
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
  });
});

Deno.test("train.ts stops at the step that reaches run.max_sampled_tokens", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/budget`;
    const result = await smoke(
      init,
      runDir,
      "--set",
      "run.max_sampled_tokens=1",
      "--set",
      "eval.after=false",
    );
    assert.equal(result.code, 0, result.stderr);
    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
    // One step of 2 prompts × 4 completions already samples more than 1 token.
    assert.deepEqual(steps.map((l) => l.step), [1]);
    const tokens = steps[0]!["completions/total_tokens"]!;
    assert.ok(tokens >= 8, `${tokens} tokens`);
    assert.equal(steps[0]!["tokens/sampled_total"], tokens);
    const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.equal(summary.steps, 1);
    assert.equal(summary.sampled_tokens, tokens);
  });
});

Deno.test("train.ts runs grpo, mgrpo and ppo from one YAML file by swapping algorithm", async () => {
  await withRun(async (tmp, init) => {
    for (const algorithm of ["grpo", "mgrpo", "ppo"]) {
      const runDir = `${tmp}/${algorithm}`;
      const result = await smoke(
        init,
        runDir,
        "--set",
        `algorithm=${algorithm}`,
        "--set",
        "eval.before=false",
        "--set",
        "eval.after=false",
      );
      assert.equal(result.code, 0, `${algorithm}: ${result.stderr}`);
      const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
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

Deno.test("train.ts runs configs/smoke-ppo.yaml with the PPO metrics", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/ppo`;
    const result = await train(
      "--config",
      "configs/smoke-ppo.yaml",
      "--set",
      `model.init=${init}`,
      "--run-dir",
      runDir,
    );
    assert.equal(result.code, 0, result.stderr);
    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
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
    assert.ok(await exists(`${runDir}/checkpoint-2/model.safetensors`));
    const first = await loadCheckpoint(`${runDir}/checkpoint-2`);
    // 2 steps × 2 PPO epochs, one optimizer step each.
    assert.equal(first.state.optimizer_steps, 4);
    first.model.dispose();

    // Two mini-batches per epoch: twice the optimizer steps.
    const mini = await train(
      "--config",
      "configs/smoke-ppo.yaml",
      "--set",
      `model.init=${init}`,
      "--set",
      "ppo.num_mini_batches=2",
      "--set",
      "eval.before=false",
      "--run-dir",
      `${tmp}/mini`,
    );
    assert.equal(mini.code, 0, mini.stderr);
    const second = await loadCheckpoint(`${tmp}/mini/checkpoint-2`);
    assert.equal(second.state.optimizer_steps, 8);
    second.model.dispose();
  });
});

Deno.test("train.ts registers an algorithm from a file path in YAML and runs two steps of it", async () => {
  await withRun(async (tmp, init) => {
    // A throwaway algorithm outside the repository: RLOO under another name and section.
    await Deno.writeTextFile(
      `${tmp}/throwaway.ts`,
      `import { algorithm as rloo, RlooConfigSchema } from "${REPO_ROOT}algorithms/rloo/mod.ts";
export const algorithm = {
  ...rloo,
  name: "throwaway",
  configSchema: RlooConfigSchema,
  buildGraph: (input) => rloo.buildGraph({ ...input, config: { ...input.config, rloo: input.config.throwaway } }),
};
`,
    );
    const smokeYaml = await Deno.readTextFile(`${REPO_ROOT}configs/smoke-grpo.yaml`);
    const yaml = smokeYaml.replace("algorithm: grpo", "algorithm: throwaway") +
      `\nplugins: [${tmp}/throwaway.ts]\nthrowaway:\n  epsilon: 0.3\n`;
    await Deno.writeTextFile(`${tmp}/throwaway.yaml`, yaml);
    const runDir = `${tmp}/run`;
    const result = await train(
      "--config",
      `${tmp}/throwaway.yaml`,
      "--set",
      `model.init=${init}`,
      "--run-dir",
      runDir,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^mgrpo: throwaway on arithmetic/m);
    const steps = (await readMetrics(runDir)).filter((l) => "reward/mean" in l);
    assert.deepEqual(steps.map((l) => l.step), [1, 2]);
    for (const line of steps) assert.ok("clip_ratio/region_mean" in line);
    const resolved = await Deno.readTextFile(`${runDir}/config.yaml`);
    assert.match(resolved, /^throwaway:\n {2}epsilon: 0\.3\n {2}loss_type: dapo$/m);

    // The plug-in's section is validated like a built-in one, with line and field.
    await Deno.writeTextFile(`${tmp}/bad.yaml`, yaml.replace("epsilon: 0.3", "epsilon: 3"));
    const bad = await train("--config", `${tmp}/bad.yaml`, "--run-dir", `${tmp}/never`);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /line \d+, field "throwaway\.epsilon" must be < 1: current value is 3/,
    );
    // An unknown algorithm lists the known ones, plug-ins included.
    const unknown = await train(
      "--config",
      `${tmp}/throwaway.yaml`,
      "--set",
      "algorithm=sac",
      "--run-dir",
      `${tmp}/never`,
    );
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /"algorithm".*"grpo".*"mgrpo".*"ppo".*"throwaway"/);
    assert.equal(await exists(`${tmp}/never`), false);
  });
});
