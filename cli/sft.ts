/**
 * `deno task sft`: supervised warm-up of the embedded model from scratch on worked solutions
 * of the synthetic task (a share of them with a slip, a guiding phrase and the correction, and a
 * share in the Layer-2 form the Corrector builds: confirmations and corrections, with phrases
 * drawn from `mgrpo.guide_phrases`, the pool RL uses),
 * completion-only cross-entropy, AdamW with warm-up and cosine decay over `--sft-steps`.
 * Evaluates greedy accuracy on the dev split as it goes (the held-out set's math never appears).
 * An example longer than the model's context (a counted check of a long chain) is left out and
 * another problem drawn; how many is printed and kept in `trainer_state.json`. The committed
 * warm start is this run stopped early (`--stop-at`), so that RL has room to improve it.
 *
 * @module
 */

import { LAYER2_TARGETS, type Layer2Target, runSft } from "../training/sft.ts";
import { COUNT_FORMS, type CountForm } from "../data/arithmetic.ts";
import { ArgsError, choiceError, COMMON_FLAGS, formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "../training/config.ts";
import { runMain } from "./common.ts";
import { resolveRepoPath } from "../training/setup.ts";

const FLAGS = {
  out: {
    type: "string",
    placeholder: "DIR",
    help: "Checkpoint folder to write (default checkpoints/tiny-sft)",
  },
  "sft-steps": {
    type: "string",
    placeholder: "N",
    help: "Length of the learning-rate schedule in optimizer steps (default 1200)",
  },
  "stop-at": {
    type: "string",
    placeholder: "N",
    help: "Stop after N steps and write --out (default 600: the warm start, with room for RL)",
  },
  snapshots: {
    type: "boolean",
    help: "Also write <out>-step<N> at every evaluation",
  },
  batch: { type: "string", placeholder: "N", help: "Sequences per step (default 16)" },
  lr: { type: "string", placeholder: "LR", help: "Peak learning rate (default 2e-3)" },
  "eval-every": {
    type: "string",
    placeholder: "N",
    help: "Evaluate every N steps (default 150)",
  },
  "correction-frac": {
    type: "string",
    placeholder: "F",
    help: "Share of examples with a slip, a guide phrase and the correction (default 0.15)",
  },
  "layer2-target": {
    type: "string",
    placeholder: LAYER2_TARGETS.join("|"),
    help:
      "What the Layer-2 examples continue with: the correct chain (recompute, default), or each equation of the answer undone and marked ok/no, the chain redone from the first no (check), or each step counted out one unit at a time from the running value (count), or each equation undone and the steps from the first no counted out (check-count)",
  },
  "count-share": {
    type: "string",
    placeholder: "S",
    help:
      "With --layer2-target count or check-count: share of the Layer-2 examples that count (or check and count), the others redo the chain (default 1)",
  },
  "count-form": {
    type: "string",
    placeholder: "plain|carry|operands|letters",
    help:
      "With --layer2-target count or check-count: plain counts each step from a head copied from the answer (5-2:4,1 3,0 3+3:…); carry lists every operation up front and carries the ones still to come on each line (5-2+3:4,1+3 3,0+3 4,2 …), so no operand is read across a count; operands carries only the operands still to come (5-2;3:4,1;3 3,0;3 3+3:…); letters carries each later operation as a letter and its operand (5-2;a3:4,1;a3 3,0;a3 3+3:…) (default plain)",
  },
  "layer2-wrong-share": {
    type: "string",
    placeholder: "S",
    help:
      "Share of the --layer2-frac examples whose answer before the guide phrase is wrong (a slip); above 0.5 a guide phrase mostly follows an error (default 0.5)",
  },
  "flip-share": {
    type: "string",
    placeholder: "S",
    help:
      "Share of the --layer2-frac examples that change the answer without checking: the thought ends at once, then the right answer after a wrong one or a slipped one after a right one, so the warm start's own correction hurts as the paper's base model's does (default 0)",
  },
  "flip-phrase": {
    type: "string",
    multiple: true,
    placeholder: "TEXT",
    help:
      "A guide phrase of mgrpo.guide_phrases after which every --layer2-frac example changes the answer without checking, as --flip-share's do; the others check as --layer2-target says (repeat for several)",
  },
  "confirm-share": {
    type: "string",
    placeholder: "S",
    help:
      "Share of the --correction-frac examples whose chain is right before the guide phrase: the chain, the phrase and the same chain again, so a phrase does not mean an error (default 0)",
  },
  "layer2-frac": {
    type: "string",
    placeholder: "F",
    help:
      "Share of examples in the Layer-2 form of the mgrpo section (its guide_position and phrases): a right or wrong answer (a confirmation or a correction), a guide phrase, then the correct chain and answer; the loss is on that continuation (default 0.1)",
  },
  seed: { type: "string", placeholder: "N", help: "Seed of data and initialisation (default 1)" },
  init: {
    type: "string",
    placeholder: "DIR",
    help:
      "Continue from this checkpoint of the tiny model instead of a fresh one (the schedule starts again)",
  },
} as const;

const HELP = formatHelp({ ...COMMON_FLAGS, ...FLAGS }, {
  usage: "deno task sft [--config FILE] [--out DIR] [--sft-steps N] ...",
  summary: "Trains the embedded model from scratch on worked solutions (the warm start of train).",
});

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const num = (name: keyof typeof FLAGS, dflt: number) => {
    const v = args.values[name];
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n)) {
      throw new ArgsError(`Invalid value for --${name}: current value is "${v}"`);
    }
    return n;
  };
  const share = (name: keyof typeof FLAGS, dflt: number) => {
    const n = num(name, dflt);
    if (n < 0 || n > 1) {
      throw new ArgsError(`Invalid value for --${name}: must be in [0, 1]: current value is ${n}`);
    }
    return n;
  };
  const config = loadConfig(args.config, { overrides: args.overrides });
  const steps = num("sft-steps", 1200);
  const layer2Target = String(args.values["layer2-target"] ?? "recompute") as Layer2Target;
  if (!LAYER2_TARGETS.includes(layer2Target)) {
    throw choiceError("layer2-target", LAYER2_TARGETS, layer2Target);
  }
  const countForm = String(args.values["count-form"] ?? "plain");
  if (!Object.hasOwn(COUNT_FORMS, countForm)) {
    throw choiceError("count-form", Object.keys(COUNT_FORMS), countForm);
  }
  const pool = config.mgrpo.guide_phrases;
  const flipPhrases = (args.values["flip-phrase"] ?? []) as string[];
  for (const phrase of flipPhrases) {
    if (!pool.includes(phrase)) {
      throw new ArgsError(
        `Invalid value for --flip-phrase: must be one of mgrpo.guide_phrases (${
          pool.map((p) => JSON.stringify(p)).join(", ")
        }): current value is ${JSON.stringify(phrase)}`,
      );
    }
  }
  await runSft(config, {
    steps,
    batchSize: num("batch", 16),
    peakLr: num("lr", 2e-3),
    stopAt: Math.min(steps, num("stop-at", 600)),
    evalEvery: num("eval-every", 150),
    correctionFrac: num("correction-frac", 0.15),
    layer2Frac: num("layer2-frac", 0.1),
    confirmShare: num("confirm-share", 0),
    layer2Target,
    countShare: num("count-share", 1),
    countForm: countForm as CountForm,
    layer2WrongShare: share("layer2-wrong-share", 0.5),
    flipShare: share("flip-share", 0),
    flipPhrases,
    seed: num("seed", 1),
    ...(args.values.init === undefined ? {} : { init: resolveRepoPath(String(args.values.init)) }),
    out: resolveRepoPath(String(args.values.out ?? "checkpoints/tiny-sft")),
    snapshots: args.values.snapshots === true,
  });
  return 0;
}

if (import.meta.main) await runMain(main);
