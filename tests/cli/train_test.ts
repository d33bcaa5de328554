/**
 * The `deno task train` process itself: exit codes and messages for a bad config, a bad flag,
 * a bad `--resume` folder and a failed actor, and `--help`. What a run produces is checked
 * in this process with the `Trainer` (`tests/training/trainer_test.ts` and its neighbours).
 */
import assert from "node:assert/strict";
import {
  exists,
  makeTinyCheckpoint,
  metricsRecords,
  REPO_ROOT,
  writeThrowawayPlugin,
} from "../helpers.ts";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run cli/train.ts ...args` from the repository root. */
async function train(...args: string[]): Promise<Result> {
  // "--allow-net" first: a run that listens (the control server).
  const net = args[0] === "--allow-net" ? [args.shift()!] : [];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", ...net, "cli/train.ts", ...args],
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

/** Runs `fn` with a fresh temp folder holding a tiny random-init checkpoint; removes it after. */
async function withRun(fn: (tmp: string, init: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "train_test_" });
  try {
    await fn(tmp, await makeTinyCheckpoint(`${tmp}/tiny-init`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

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

Deno.test("train.ts exits 2 for a --resume folder that is not a run, naming what is wrong, and writes nothing", async () => {
  await withRun(async (tmp) => {
    const empty = `${tmp}/empty-run`;
    await Deno.mkdir(empty);
    await Deno.writeTextFile(`${tmp}/file`, "x");
    const cases: [string, string][] = [
      [
        empty,
        `Cannot resume from "${empty}": it is not a run folder (no checkpoint-<step> folder in it)`,
      ],
      [`${tmp}/missing`, `Cannot resume from "${tmp}/missing": the folder does not exist`],
      [`${tmp}/file`, `Cannot resume from "${tmp}/file": the path is a file, not a run folder`],
    ];
    for (const [dir, message] of cases) {
      const result = await train("--resume", dir, "--steps", "3");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `${message}\n`);
    }
    assert.deepEqual(await Array.fromAsync(Deno.readDir(empty)), []);
    assert.ok(!(await exists(`${tmp}/missing`)));
  });
});

Deno.test("train.ts exits 2 for a missing model folder or dataset and leaves no run folder", async () => {
  await withRun(async (tmp) => {
    const cases: [string[], string][] = [
      [
        ["--set", `model.init=${tmp}/no-model`],
        `Cannot load model.init "${tmp}/no-model": the folder does not exist`,
      ],
      [
        ["--set", `model.init=${tmp}/empty-model`],
        `Cannot load model.init "${tmp}/empty-model": the folder holds no "config.json": it is not a model folder (ours or a Hugging Face one)`,
      ],
      [
        ["--set", "task.kind=jsonl", "--set", `task.path=${tmp}/none.jsonl`],
        `Cannot load dataset "${tmp}/none.jsonl": file not found`,
      ],
      [
        ["--set", "task.kind=jsonl", "--set", `task.path=${tmp}/bad.jsonl`],
        `Cannot load dataset: ${tmp}/bad.jsonl:2: not JSON: `,
      ],
    ];
    await Deno.mkdir(`${tmp}/empty-model`);
    await Deno.writeTextFile(`${tmp}/bad.jsonl`, '{"question": "1+1?", "answer": 2}\n{oops\n');
    for (const [args, message] of cases) {
      const run = `${tmp}/run`;
      const result = await train(...args, "--steps", "1", "--run-dir", run);
      assert.equal(result.code, 2, result.stderr);
      assert.ok(result.stderr.startsWith(message), result.stderr);
      assert.doesNotMatch(result.stderr, /checkpoint|readfile|os error/);
      assert.ok(!(await exists(run)), `${args.join(" ")}: no run folder`);
    }
  });
});

Deno.test("train.ts never echoes a dataset line's escape sequences to the terminal", async () => {
  await withRun(async (tmp) => {
    // A line that would clear the screen, set the window title and use a one-byte CSI.
    // Not JSON, so the parser's message quotes it.
    const hostile = 'x\x1b]0;pwned\x07\x1b[2J\x9b31m {"question": "1+1?"}';
    await Deno.writeTextFile(`${tmp}/hostile.jsonl`, `${hostile}\n`);
    const result = await train(
      "--set",
      "task.kind=jsonl",
      "--set",
      `task.path=${tmp}/hostile.jsonl`,
      "--run-dir",
      `${tmp}/run`,
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^Cannot load dataset: ${tmp}/hostile\\.jsonl:1: `));
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(result.stderr, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    assert.match(result.stderr, /"x\\x1b\]0;pwned"/);
  });
});

Deno.test("train.ts checks control.host before writing: a bad one leaves no run folder and a resumed run's config.yaml untouched", async () => {
  await withRun(async (tmp, init) => {
    const run = `${tmp}/run`;
    const args = ["--config", "configs/smoke-grpo.yaml", "--set", `model.init=${init}`];
    const bad = ["--set", "control.host=no-such-host.invalid"];
    const fresh = await train("--allow-net", ...args, ...bad, "--run-dir", run);
    assert.equal(fresh.code, 2, fresh.stderr);
    assert.match(
      fresh.stderr,
      /field "control\.host" cannot be listened on: .*current value is "no-such-host\.invalid"/,
    );
    assert.ok(!(await exists(run)));

    const done = await train("--allow-net", ...args, "--run-dir", run);
    assert.equal(done.code, 0, done.stderr);
    const before = await Deno.readTextFile(`${run}/config.yaml`);
    const resumed = await train("--allow-net", "--resume", run, "--steps", "4", ...bad);
    assert.equal(resumed.code, 2, resumed.stderr);
    assert.equal(await Deno.readTextFile(`${run}/config.yaml`), before);
  });
});

Deno.test("train.ts exits 2 for a plug-in's invalid section and for an unknown algorithm", async () => {
  await withRun(async (tmp) => {
    const yaml = await writeThrowawayPlugin(tmp);
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

Deno.test("train.ts exits 1 when an actor fails without restarts, naming the actor and the message", async () => {
  await withRun(async (tmp, init) => {
    const runDir = `${tmp}/run`;
    const sets = [
      `model.init=${init}`,
      "run.steps=3",
      "eval.before=false",
      "eval.after=false",
      "faults=[{actor: sampler, step: 2, kind: throw}]",
    ];
    const result = await train(
      "--config",
      "configs/smoke-grpo.yaml",
      ...sets.flatMap((s) => ["--set", s]),
      "--run-dir",
      runDir,
    );
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /ActorFailed: actor "sampler" failed while handling "Generate": injected fault/,
    );
    const steps = (await metricsRecords(runDir)).filter((r) => !("eval/accuracy" in r));
    assert.deepEqual(steps.map((r) => r.step), [1]);
  });
});
