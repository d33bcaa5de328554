import assert from "node:assert/strict";
import {
  ArgsError,
  COMMON_FLAGS,
  type FlagSpec,
  formatHelp,
  parseCommonArgs,
  parseTrainArgs,
  TRAIN_FLAGS,
  TRAIN_HELP,
} from "../../cli/args.ts";
import { loadConfig } from "../../training/config.ts";

/** Asserts that parsing `argv` throws an ArgsError with exactly `message`. */
function assertArgsError(argv: string[], message: string): void {
  assert.throws(() => parseTrainArgs(argv), (error) => {
    assert.ok(error instanceof ArgsError, `expected an ArgsError, got ${error}`);
    assert.equal(error.message, message);
    return true;
  });
}

const KNOWN = "--config, --set, --help, --run-dir, --overwrite, --steps, --seed, --resume";

Deno.test("parseTrainArgs() with no flags asks for the default config and nothing else", () => {
  assert.deepEqual(parseTrainArgs([]), { overrides: [], help: false });
});

Deno.test("parseTrainArgs() reads every flag, keeping overrides in command-line order", () => {
  const args = parseTrainArgs([
    "--config",
    "configs/smoke-grpo.yaml",
    "--set",
    "learner.lr=3e-4",
    "--steps=5",
    "--set=grpo.beta=0.04",
    "--seed",
    "7",
    "--run-dir",
    "runs/a",
    "-h",
  ]);
  assert.deepEqual(args, {
    config: "configs/smoke-grpo.yaml",
    overrides: ["learner.lr=3e-4", "run.steps=5", "grpo.beta=0.04", "run.seed=7"],
    runDir: "runs/a",
    help: true,
  });
  assert.deepEqual(parseTrainArgs(["--resume", "runs/b", "--set", "learner.lr=1e-5"]), {
    overrides: ["learner.lr=1e-5"],
    resume: "runs/b",
    help: false,
  });
});

Deno.test("parseTrainArgs() refuses --config with --resume instead of ignoring the file", () => {
  assertArgsError(
    ["--resume", "runs/b", "--config", "configs/smoke-grpo.yaml"],
    "Cannot combine --config with --resume: a resumed run keeps the config saved in " +
      "runs/b/config.yaml; change settings with --set key=value instead",
  );
});

Deno.test("parseTrainArgs() lets a later --set beat --steps, as the order says", () => {
  const args = parseTrainArgs(["--steps", "5", "--set", "run.steps=9", "--seed", "0"]);
  assert.deepEqual(args.overrides, ["run.steps=5", "run.steps=9", "run.seed=0"]);
  const config = loadConfig("x.yaml", { text: "run:\n  steps: 60\n", overrides: args.overrides });
  assert.equal(config.run.steps, 9);
  assert.equal(config.run.seed, 0);
  assert.equal(loadConfig("x.yaml", { text: "", overrides: ["run.steps=5"] }).run.steps, 5);
});

Deno.test("parseTrainArgs() accepts --help and -h", () => {
  assert.equal(parseTrainArgs(["--help"]).help, true);
  assert.equal(parseTrainArgs(["-h"]).help, true);
});

Deno.test("parseTrainArgs() rejects a --steps or --seed that is not an integer in range", () => {
  assertArgsError(
    ["--steps", "abc"],
    'Invalid value for --steps: must be a positive integer: current value is "abc"',
  );
  assertArgsError(
    ["--steps", "0"],
    'Invalid value for --steps: must be a positive integer: current value is "0"',
  );
  assertArgsError(
    ["--steps", "2.5"],
    'Invalid value for --steps: must be a positive integer: current value is "2.5"',
  );
  assertArgsError(
    ["--steps", "1e3"],
    'Invalid value for --steps: must be a positive integer: current value is "1e3"',
  );
  assertArgsError(
    ["--seed=-1"],
    'Invalid value for --seed: must be a non-negative integer: current value is "-1"',
  );
  assertArgsError(
    ["--seed", "99999999999999999999"],
    'Invalid value for --seed: must be a non-negative integer: current value is "99999999999999999999"',
  );
});

Deno.test("parseTrainArgs() names an unknown flag and lists the known ones", () => {
  assertArgsError(["--stpes", "5"], `Unknown flag "--stpes": known flags are ${KNOWN}`);
  assertArgsError(["-x"], `Unknown flag "-x": known flags are ${KNOWN}`);
});

Deno.test("parseTrainArgs() names a flag whose value is missing", () => {
  assertArgsError(["--config"], "Missing value for --config: expected --config FILE");
  assertArgsError(
    ["--config", "--steps", "3"],
    'Missing value for --config: expected --config FILE (write --config=FILE for a value that starts with "-")',
  );
});

Deno.test("parseTrainArgs() rejects stray arguments, values on --help and repeated flags", () => {
  assertArgsError(
    ["configs/smoke-grpo.yaml"],
    'Unexpected argument "configs/smoke-grpo.yaml": every value must follow its flag, as in --config FILE',
  );
  assertArgsError(["--help=yes"], "Flag --help takes no value");
  assertArgsError(
    ["--config", "a.yaml", "--config", "b.yaml"],
    'Flag --config is given more than once: current values are "a.yaml" and "b.yaml"',
  );
});

Deno.test("parseTrainArgs() rejects a --set without key=value", () => {
  assertArgsError(
    ["--set", "learner.lr"],
    'Invalid value for --set: must be KEY=VALUE such as learner.lr=3e-4: current value is "learner.lr"',
  );
  assertArgsError(
    ["--set", "=1"],
    'Invalid value for --set: must be KEY=VALUE such as learner.lr=3e-4: current value is "=1"',
  );
});

Deno.test("parseCommonArgs() takes a CLI's own flags and override shorthands", () => {
  const evalFlags: Record<string, FlagSpec> = {
    checkpoint: { type: "string", placeholder: "DIR", help: "Checkpoint to evaluate" },
    size: {
      type: "string",
      placeholder: "N",
      help: "Problems to evaluate",
      override: { path: "task.eval_size", min: 1 },
    },
    verbose: { type: "boolean", help: "Print every answer" },
  };
  const args = parseCommonArgs(
    ["--checkpoint", "runs/a/final", "--size", "50", "--verbose", "--set", "eval.greedy=false"],
    evalFlags,
  );
  assert.deepEqual(args, {
    overrides: ["task.eval_size=50", "eval.greedy=false"],
    help: false,
    values: {
      checkpoint: "runs/a/final",
      size: "50",
      verbose: true,
      set: ["eval.greedy=false"],
    },
  });
  assert.throws(() => parseCommonArgs(["--steps", "5"], evalFlags), {
    name: "ArgsError",
    message: 'Unknown flag "--steps": known flags are --config, --set, --help, --checkpoint, ' +
      "--size, --verbose",
  });
});

Deno.test("TRAIN_HELP lists every flag with its explanation and an example", () => {
  assert.match(TRAIN_HELP, /^Usage: deno task train \[flags\]\n/);
  for (const [name, spec] of Object.entries({ ...COMMON_FLAGS, ...TRAIN_FLAGS })) {
    const placeholder = spec.type === "string" ? ` ${spec.placeholder}` : "";
    const line = TRAIN_HELP.split("\n").find((l) => l.includes(`--${name}${placeholder} `));
    assert.ok(line !== undefined, `no help line for --${name}`);
    assert.ok(line.endsWith(spec.help), `help line for --${name}: ${line}`);
    if (spec.type === "string") assert.ok(TRAIN_HELP.includes(`e.g. ${spec.example}`));
  }
  assert.match(
    TRAIN_HELP,
    /\n {2}--steps N {8}Number of training steps, same as --set run\.steps=N\n/,
  );
  assert.match(TRAIN_HELP, /\n {2}-h, --help {7}Print this help and exit\n\nExamples:\n/);
});

Deno.test("formatHelp() aligns the explanations after the longest flag", () => {
  const help = formatHelp({
    a: { type: "boolean", help: "First" },
    "long-name": { type: "string", placeholder: "X", help: "Second", example: "--long-name 1" },
  }, { usage: "demo [flags]", summary: "Does things." });
  assert.equal(
    help,
    [
      "Usage: demo [flags]",
      "",
      "Does things.",
      "",
      "Flags:",
      "  --a            First",
      "  --long-name X  Second",
      "                 e.g. --long-name 1",
      "",
    ].join("\n"),
  );
});
