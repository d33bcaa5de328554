/**
 * `deno task eval`: greedy (or sampled) held-out accuracy of a checkpoint on the synthetic
 * task of the config, printed as a table, with a few sample completions.
 *
 * @module
 */
import { formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "./config.ts";
import {
  evaluateCheckpointTwoTurn,
  formatTable,
  heldOut,
  promptRenderer,
  resolveRepoPath,
  runMain,
  TWO_TURN_COLUMNS,
} from "./common.ts";
import { initBackend } from "../model/backend.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { evaluatePolicy } from "../algorithms/evaluate.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    placeholder: "DIR",
    multiple: true,
    help: "Checkpoint folder to evaluate (repeatable; default: model.init of the config)",
  },
  samples: { type: "string", placeholder: "N", help: "Sample completions to print (default 3)" },
  "two-turn": {
    type: "boolean",
    help:
      "Solve, then self-correct twice (guide phrases from the mgrpo section): the paper's Table 2 columns",
  },
} as const;

const HELP = formatHelp(FLAGS, {
  usage: "deno task eval [--config FILE] [--checkpoint DIR]... [--set key=value]...",
  summary:
    "Held-out accuracy of checkpoints on the config's synthetic task (eval section settings).",
});

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig(args.config, { overrides: args.overrides });
  const dirs = (args.values.checkpoint as string[] | undefined) ??
    [resolveRepoPath(config.model.init)];
  const nSamples = Number(args.values.samples ?? 3);
  await initBackend(config.model.backend);
  const render = promptRenderer(config.prompts);
  const { problems } = heldOut(config.task);
  const rows: (string | number)[][] = [];
  if (args.values["two-turn"] === true) {
    const pct = (x: number | undefined) => (x === undefined ? "-" : (100 * x).toFixed(1));
    for (const dir of dirs) {
      const { metrics: m, result: res } = await evaluateCheckpointTwoTurn(dir, config, problems);
      rows.push([
        dir,
        pct(m.acc_t1),
        pct(m.acc_t1_prime),
        pct(m.acc_t2),
        pct(m.delta_t1_prime_t2),
        pct(m.delta_i_to_c),
        pct(m.delta_c_to_i),
        res.overflow,
      ]);
      for (const c of res.completions.slice(0, nSamples)) console.log(JSON.stringify(c));
    }
    console.log(
      `\nSelf-correction evaluation (${problems.length} problems, solve then two correction prompts):`,
    );
    console.log(formatTable([
      "checkpoint",
      ...TWO_TURN_COLUMNS,
      "overflow",
    ], rows));
    return 0;
  }
  for (const dir of dirs) {
    const { model, tokenizer } = await loadCheckpoint(dir, { trainable: false });
    const t0 = performance.now();
    const res = await evaluatePolicy(model, tokenizer, problems, {
      renderPrompt: render,
      maxNewTokens: config.eval.max_new_tokens,
      greedy: config.eval.greedy,
      temperature: config.eval.temperature,
      batchSize: config.eval.batch_size,
      seed: config.run.seed,
    });
    rows.push([
      dir,
      (100 * res.accuracy).toFixed(1),
      (100 * res.formatRate).toFixed(1),
      res.meanLength.toFixed(1),
      ((performance.now() - t0) / 1000).toFixed(1),
    ]);
    for (const s of res.samples.slice(0, nSamples)) {
      const p = problems.find((q) => q.id === s.id)!;
      console.log(
        `${p.question}\n  -> ${JSON.stringify(s.completion)} (gold ${p.answer}, ${s.reason})`,
      );
    }
    model.dispose();
  }
  console.log(
    `\nHeld-out evaluation (${problems.length} problems, ${
      config.eval.greedy ? "greedy" : `temperature ${config.eval.temperature}`
    }):`,
  );
  console.log(
    formatTable(["checkpoint", "accuracy %", "format %", "mean tokens", "seconds"], rows),
  );
  return 0;
}

if (import.meta.main) await runMain(main);
