/**
 * Command-line flags of the `train` CLI, on a small generic layer that the
 * `sft` and `eval` CLIs reuse: every CLI takes `--config FILE`, repeatable
 * `--set key=value` and `--help`, plus its own flags, some of which are
 * shorthands for an override (`--steps 5` is `--set run.steps=5`).
 *
 * @module
 */
import { parseArgs } from "node:util";

/**
 * A usage error: an unknown flag, a missing or malformed value. CLIs catch it,
 * print its message with a hint to run `--help`, and exit with status 2.
 */
export class ArgsError extends Error {
  /** Creates the error; `options.cause` keeps the `node:util` parse error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ArgsError";
  }
}

/**
 * The error for a flag whose value is not one of `choices`:
 * `Invalid value for --split: must be "a", "b" or "c": current value is "x"`.
 */
export function choiceError(flag: string, choices: readonly string[], value: string): ArgsError {
  const names = choices.map((name) => `"${name}"`);
  return new ArgsError(
    `Invalid value for --${flag}: must be ${names.slice(0, -1).join(", ")} or ${
      names.at(-1)
    }: current value is "${value}"`,
  );
}

/** One command-line flag: how it parses and how `--help` shows it. */
export interface FlagSpec {
  /** `"string"` takes a value (`--config FILE`), `"boolean"` takes none. */
  readonly type: "string" | "boolean";
  /**
   * One-letter alias (`"h"` for `-h`).
   * @default undefined
   */
  readonly short?: string;
  /**
   * The flag may be given several times; all values are kept in order.
   * @default false
   */
  readonly multiple?: boolean;
  /**
   * Placeholder for the value in help (`FILE`, `N`, `DIR`).
   * @default "VALUE"
   */
  readonly placeholder?: string;
  /** One line of explanation for help. */
  readonly help: string;
  /**
   * A full example use, shown under the explanation.
   * @default undefined
   */
  readonly example?: string;
  /**
   * Makes the flag a shorthand for an integer override: `--steps N` becomes
   * `--set run.steps=N` after checking that N is an integer >= `min`.
   * @default undefined
   */
  readonly override?: { readonly path: string; readonly min: 0 | 1 };
}

/** What every CLI accepts: the config, overrides and help. */
export const COMMON_FLAGS: Readonly<Record<string, FlagSpec>> = {
  config: {
    type: "string",
    placeholder: "FILE",
    help: "YAML config to load (default: configs/tiny-mgrpo.yaml)",
    example: "--config configs/smoke-grpo.yaml",
  },
  set: {
    type: "string",
    multiple: true,
    placeholder: "KEY=VALUE",
    help: "Override one config field, VALUE read as YAML; repeatable, the last one wins",
    example: "--set learner.lr=3e-4 --set grpo.loss_type=bnpo",
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

/** Parsed flags shared by every CLI, plus the values of the CLI's own flags. */
export interface CommonArgs {
  /** `--config FILE`, when given. */
  readonly config?: string;
  /**
   * `key=value` overrides in command-line order: every `--set` and every
   * override shorthand (`--steps 5` → `"run.steps=5"`).
   */
  readonly overrides: string[];
  /** `--help` or `-h` was given. */
  readonly help: boolean;
  /** The other flags by long name (shorthands included): a string, a boolean or a list. */
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
}

/**
 * Parses `argv` against {@linkcode COMMON_FLAGS} plus `extraFlags`. Strict:
 * unknown flags, positional arguments, missing values and a single-valued
 * flag given twice are {@linkcode ArgsError}s.
 *
 * @example A CLI with its own flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCommonArgs } from "./args.ts";
 *
 * const args = parseCommonArgs(["--set", "eval.greedy=false", "--checkpoint", "runs/a"], {
 *   checkpoint: { type: "string", placeholder: "DIR", help: "Checkpoint to evaluate" },
 * });
 * assert.deepEqual(args.overrides, ["eval.greedy=false"]);
 * assert.equal(args.values.checkpoint, "runs/a");
 * ```
 */
export function parseCommonArgs(
  argv: readonly string[],
  extraFlags: Readonly<Record<string, FlagSpec>> = {},
): CommonArgs {
  const flags: Record<string, FlagSpec> = { ...COMMON_FLAGS, ...extraFlags };
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = {
      type: spec.type,
      ...(spec.short === undefined ? {} : { short: spec.short }),
      ...(spec.multiple === true ? { multiple: true } : {}),
    };
  }

  let tokens;
  try {
    ({ tokens } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: false,
      tokens: true,
    }));
  } catch (cause) {
    throw new ArgsError(describeParseError(cause, flags), { cause });
  }

  const overrides: string[] = [];
  const values: Record<string, string | boolean | string[]> = {};
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const spec = flags[token.name]!;
    const flag = `--${token.name}`;
    if (spec.type === "boolean") {
      values[token.name] = true;
      continue;
    }
    const value = token.value ?? "";
    if (spec.multiple === true) {
      const list = values[token.name];
      values[token.name] = Array.isArray(list) ? [...list, value] : [value];
    } else if (typeof values[token.name] === "string") {
      throw new ArgsError(
        `Flag ${flag} is given more than once: current values are ${
          JSON.stringify(values[token.name])
        } and ${JSON.stringify(value)}`,
      );
    } else {
      values[token.name] = value;
    }
    if (token.name === "set") {
      if (!/^[^=]+=/.test(value)) {
        throw new ArgsError(
          `Invalid value for --set: must be KEY=VALUE such as learner.lr=3e-4: current value is ${
            JSON.stringify(value)
          }`,
        );
      }
      overrides.push(value);
    } else if (spec.override !== undefined) {
      overrides.push(`${spec.override.path}=${parseInteger(flag, value, spec.override.min)}`);
    }
  }

  const config = values.config;
  return {
    ...(typeof config === "string" ? { config } : {}),
    overrides,
    help: values.help === true,
    values,
  };
}

/**
 * Parses `argv` against `flags` alone (tools with flags of their own, such as `compare` and
 * `seeds`): strict, with the same one-line {@linkcode ArgsError}s as
 * {@linkcode parseCommonArgs}. Arguments after `--` are returned as `passThrough` when
 * `allowPassThrough`; any other positional argument is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./args.ts";
 *
 * const flags = { seeds: { type: "string", placeholder: "LIST", help: "Seeds" } } as const;
 * assert.deepEqual(parseFlags(["--seeds", "0,1"], flags).values, { seeds: "0,1" });
 * assert.throws(() => parseFlags(["--sedes", "0"], flags), {
 *   message: 'Unknown flag "--sedes": known flags are --seeds',
 * });
 * ```
 */
export function parseFlags(
  argv: readonly string[],
  flags: Readonly<Record<string, FlagSpec>>,
  options: { allowPassThrough?: boolean; allowPositionals?: boolean } = {},
): {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  passThrough: string[];
} {
  const dash = argv.indexOf("--");
  const own = dash >= 0 && options.allowPassThrough ? argv.slice(0, dash) : [...argv];
  const passThrough = dash >= 0 && options.allowPassThrough ? argv.slice(dash + 1) : [];
  const spec: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [name, f] of Object.entries(flags)) {
    spec[name] = {
      type: f.type,
      ...(f.short === undefined ? {} : { short: f.short }),
      ...(f.multiple === true ? { multiple: true } : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: own,
      options: spec,
      strict: true,
      allowPositionals: options.allowPositionals ?? false,
    });
    return {
      values: { ...values } as Record<string, string | boolean | string[] | undefined>,
      positionals,
      passThrough,
    };
  } catch (cause) {
    throw new ArgsError(describeParseError(cause, flags), { cause });
  }
}

/** The `train` CLI's own flags, after {@linkcode COMMON_FLAGS}. */
export const TRAIN_FLAGS: Readonly<Record<string, FlagSpec>> = {
  "run-dir": {
    type: "string",
    placeholder: "DIR",
    help:
      "Write the run to DIR (refused when DIR holds anything) instead of a fresh <run.dir>/<run.name>-<date>",
    example: "--run-dir runs/lr-sweep-3e-4",
  },
  overwrite: {
    type: "boolean",
    help:
      "With --run-dir: move a run already in DIR aside to DIR.replaced-<time> (nothing is deleted)",
  },
  steps: {
    type: "string",
    placeholder: "N",
    help: "Number of training steps, same as --set run.steps=N",
    example: "--steps 10",
    override: { path: "run.steps", min: 1 },
  },
  seed: {
    type: "string",
    placeholder: "N",
    help: "Random seed, same as --set run.seed=N",
    example: "--seed 1",
    override: { path: "run.seed", min: 0 },
  },
  resume: {
    type: "string",
    placeholder: "DIR",
    help: "Continue the run saved in DIR from its latest checkpoint",
    example: "--resume runs/tiny-mgrpo",
  },
};

/** Parsed flags of `deno task train`. */
export interface TrainArgs {
  /** `--config FILE`, when given; the CLI falls back to the embedded default. */
  readonly config?: string;
  /** `--set`, `--steps` and `--seed` as `key=value` overrides, in command-line order. */
  readonly overrides: string[];
  /** `--run-dir DIR`, when given. */
  readonly runDir?: string;
  /** `--resume DIR`, when given. */
  readonly resume?: string;
  /** `--overwrite`: move a run already in `--run-dir` aside. */
  readonly overwrite?: boolean;
  /** `--help` or `-h` was given. */
  readonly help: boolean;
}

/**
 * Parses the arguments of `deno task train`.
 *
 * @throws {ArgsError} for an unknown flag, a missing value, a `--steps` / `--seed` that is
 * not an integer in range, or `--config` with `--resume`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainArgs } from "./args.ts";
 *
 * const args = parseTrainArgs(["--config", "configs/smoke-grpo.yaml", "--steps", "5"]);
 * assert.equal(args.config, "configs/smoke-grpo.yaml");
 * assert.deepEqual(args.overrides, ["run.steps=5"]);
 * assert.throws(() => parseTrainArgs(["--steps", "abc"]), {
 *   message: 'Invalid value for --steps: must be a positive integer: current value is "abc"',
 * });
 * ```
 */
export function parseTrainArgs(argv: readonly string[]): TrainArgs {
  const args = parseCommonArgs(argv, TRAIN_FLAGS);
  const runDir = args.values["run-dir"];
  const resume = args.values.resume;
  if (typeof resume === "string" && args.config !== undefined) {
    // Silently ignoring the file would train on a config the user did not ask for.
    throw new ArgsError(
      `Cannot combine --config with --resume: a resumed run keeps the config saved in ` +
        `${resume}/config.yaml; change settings with --set key=value instead`,
    );
  }
  return {
    ...(args.config === undefined ? {} : { config: args.config }),
    overrides: args.overrides,
    ...(typeof runDir === "string" ? { runDir } : {}),
    ...(typeof resume === "string" ? { resume } : {}),
    ...(args.values.overwrite === true ? { overwrite: true } : {}),
    help: args.help,
  };
}

/** What {@linkcode formatHelp} prints around the flags. */
export interface HelpOptions {
  /** The usage line: `deno task train [flags]`. */
  readonly usage: string;
  /** What the command does, one or two sentences. */
  readonly summary: string;
  /**
   * Whole command lines shown at the end.
   * @default []
   */
  readonly examples?: readonly string[];
}

/**
 * Usage text: the usage line, the summary, every flag with one line of
 * explanation and its example, then whole examples.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMMON_FLAGS, formatHelp } from "./args.ts";
 *
 * const help = formatHelp(COMMON_FLAGS, { usage: "deno task eval [flags]", summary: "Evaluate." });
 * assert.match(help, /--config FILE +YAML config to load/);
 * ```
 */
export function formatHelp(
  flags: Readonly<Record<string, FlagSpec>>,
  options: HelpOptions,
): string {
  // --help goes last, after the flags that do something
  const entries = Object.entries(flags).sort(([a], [b]) =>
    Number(a === "help") - Number(b === "help")
  );
  const rows = entries.map(([name, spec]) => {
    const short = spec.short === undefined ? "" : `-${spec.short}, `;
    const value = spec.type === "string" ? ` ${spec.placeholder ?? "VALUE"}` : "";
    return { left: `${short}--${name}${value}`, spec };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  const lines = [`Usage: ${options.usage}`, "", options.summary, "", "Flags:"];
  for (const { left, spec } of rows) {
    lines.push(`  ${left.padEnd(width)}${spec.help}`);
    if (spec.example !== undefined) lines.push(`  ${"".padEnd(width)}e.g. ${spec.example}`);
  }
  if (options.examples !== undefined && options.examples.length > 0) {
    lines.push("", "Examples:", ...options.examples.map((e) => `  ${e}`));
  }
  return lines.join("\n") + "\n";
}

/** Usage text of `deno task train`, printed by `--help`. */
export const TRAIN_HELP: string = formatHelp({ ...COMMON_FLAGS, ...TRAIN_FLAGS }, {
  usage: "deno task train [flags]",
  summary: "Train a policy with RL on the task, algorithm and settings of a YAML config.\n" +
    "Without flags it runs the embedded default, configs/tiny-mgrpo.yaml.",
  examples: [
    "deno task train",
    "deno task train --config configs/smoke-grpo.yaml",
    "deno task train --set learner.lr=3e-4 --set grpo.beta=0.04 --steps 100 --seed 1",
    "deno task train --resume runs/tiny-mgrpo",
  ],
});

// --- helpers ---

function parseInteger(flag: string, value: string, min: 0 | 1): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    const kind = min === 1 ? "a positive integer" : "a non-negative integer";
    throw new ArgsError(
      `Invalid value for ${flag}: must be ${kind}: current value is ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** Rewrites a `node:util` parseArgs error in our words, naming the flag. */
function describeParseError(error: unknown, flags: Readonly<Record<string, FlagSpec>>): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string } | null)?.code;
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted; // "-h, --help" → "--help"
  const placeholder = flags[flag.replace(/^--/, "")]?.placeholder ?? "VALUE";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const known = Object.keys(flags).map((name) => `--${name}`).join(", ");
      return `Unknown flag ${JSON.stringify(flag)}: known flags are ${known}`;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `Unexpected argument ${
        JSON.stringify(quoted)
      }: every value must follow its flag, as in --config FILE`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (message.includes("does not take an argument")) {
        return `Flag ${flag} takes no value`;
      }
      if (message.includes("ambiguous")) {
        return `Missing value for ${flag}: expected ${flag} ${placeholder} (write ${flag}=${placeholder} for a value that starts with "-")`;
      }
      return `Missing value for ${flag}: expected ${flag} ${placeholder}`;
    default:
      return `Invalid arguments: ${message}`;
  }
}
