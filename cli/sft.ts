/**
 * `deno task sft`: supervised warm-up of the embedded model from scratch on worked solutions
 * of the synthetic task (a share of them with a slip, a guiding phrase and the correction, and a
 * share in the Layer-2 form the Corrector builds: confirmations and corrections, with phrases
 * drawn from `mgrpo.guide_phrases`, the pool RL uses),
 * completion-only cross-entropy, AdamW with warm-up and cosine decay over `--sft-steps`.
 * Evaluates greedy held-out accuracy as it goes. The committed warm start is this run
 * stopped early (`--stop-at`), so that RL has room to improve it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgsError, formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "../training/config.ts";
import { runMain } from "./common.ts";
import { selfCorrectionOptions } from "../training/evaluate.ts";
import { arithmeticOptions, heldOut, promptRenderer, resolveRepoPath } from "../training/setup.ts";
import { initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { batchLogprobs, packBatch } from "../model/sampling.ts";
import { AdamW, learningRateAt } from "../model/optimizer.ts";
import { GradientStep } from "../model/gradient_step.ts";
import { saveCheckpoint } from "../model/checkpoint.ts";
import { Rng } from "../util/rng.ts";
import {
  checkedContinuation,
  confirmationSolution,
  correctionSolution,
  formatCompletion,
  formatSteps,
  layer2Continuation,
  problemStream,
  slipSteps,
  workedSolution,
} from "../data/arithmetic.ts";
import { drawGuidePhrase } from "../algorithms/mgrpo/mod.ts";
import { evaluatePolicy } from "../algorithms/mgrpo/evaluate.ts";

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
    placeholder: "recompute|check",
    help:
      "What the Layer-2 examples continue with: the correct chain (recompute, default), or each equation of the answer undone and marked ok/no, the chain redone from the first no (check)",
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
} as const;

const HELP = formatHelp(FLAGS, {
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
  const config = loadConfig(args.config, { overrides: args.overrides });
  const steps = num("sft-steps", 1200), batchSize = num("batch", 16), peakLr = num("lr", 2e-3);
  const stopAt = Math.min(steps, num("stop-at", 600));
  const evalEvery = num("eval-every", 150), correctionFrac = num("correction-frac", 0.15);
  const layer2Frac = num("layer2-frac", 0.1);
  const confirmShare = num("confirm-share", 0);
  const layer2Target = String(args.values["layer2-target"] ?? "recompute");
  if (layer2Target !== "recompute" && layer2Target !== "check") {
    throw new ArgsError(
      `Invalid value for --layer2-target: must be "recompute" or "check": current value is "${layer2Target}"`,
    );
  }
  const seed = num("seed", 1);
  const out = resolveRepoPath(String(args.values.out ?? "checkpoints/tiny-sft"));

  const backend = await initBackend(config.model.backend, {
    wasmThreads: config.model.wasm_threads,
  });
  const tokenizer = new CharTokenizer();
  const model = Transformer.create({ ...TINY_MODEL_CONFIG, vocab_size: tokenizer.vocabSize }, {
    seed,
  });
  const optimizer = new AdamW(model.params, { weightDecay: 0.01, beta2: 0.99 });
  // The project's one gradient step (the Learner's), clipped to learner.max_grad_norm.
  const gradients = new GradientStep(model.params, optimizer, {
    maxGradNorm: config.learner.max_grad_norm,
  });
  const render = promptRenderer(config.prompts);
  const correction = selfCorrectionOptions(config);
  // Progress is measured on the dev split (drawn like training problems): choices such as
  // --stop-at are never made on the held-out set, whose keys are all kept out of the data.
  const { problems: devSet, keys } = heldOut(config.task, "dev");
  const evalSet = devSet.slice(0, config.task.eval_size);
  const phrases = config.mgrpo.guide_phrases;
  const stream = problemStream(seed, { ...arithmeticOptions(config.task), exclude: keys });
  const rng = new Rng(seed).fork("sft");
  console.log(
    `sft: ${model.numParameters} parameters, backend ${backend}, ${stopAt} of ${steps} steps of ${batchSize}, lr ${peakLr}`,
  );

  const t0 = performance.now();
  let tokens = 0;
  for (let step = 0; step < stopAt; step++) {
    const prompts: number[][] = [], completions: number[][] = [];
    for (let i = 0; i < batchSize; i++) {
      const p = stream.next().value;
      const u = rng.next();
      if (u < layer2Frac) {
        // Layer 2 (Eq. 5): q' = question + a right or wrong Layer-1 answer + p_guide.
        // The same draws as wrongSolution()/workedSolution(), keeping the steps of o_i.
        const steps = rng.next() < 0.5 ? slipSteps(p, rng) : p.steps;
        const layer1 = formatCompletion(formatSteps(steps), steps[steps.length - 1]!.after);
        const phrase = drawGuidePhrase(rng, phrases);
        prompts.push(
          tokenizer.encode(correction.buildCorrection(p.question, layer1, phrase).prompt),
        );
        const target = layer2Target === "check"
          ? checkedContinuation(steps, p)
          : layer2Continuation(p);
        completions.push([...tokenizer.encode(target), tokenizer.imEndId]);
        continue;
      }
      const text = u < layer2Frac + correctionFrac
        ? (confirmShare > 0 && rng.next() < confirmShare
          ? confirmationSolution(p, drawGuidePhrase(rng, phrases))
          : correctionSolution(p, rng, drawGuidePhrase(rng, phrases)))
        : workedSolution(p);
      prompts.push(tokenizer.encode(render(p.question)));
      completions.push([...tokenizer.encode(text), tokenizer.imEndId]);
    }
    const batch = packBatch(prompts, completions, tokenizer.padId);
    const maskSum = batch.mask.reduce((a, b) => a + b, 0);
    const lr = learningRateAt(step, {
      lr: peakLr,
      totalSteps: steps,
      warmupRatio: 0.05,
      schedule: "cosine",
      minLrRatio: 0.1,
    });
    const value = gradients.accumulate(() => {
      const { logp } = batchLogprobs(model, batch);
      return tf.div(
        tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(batch.mask, [batch.n, batch.t])))),
        maskSum,
      ) as tf.Scalar;
    });
    const { applied, nonFinite } = await gradients.apply(() => lr);
    if (!applied) {
      console.error(`step ${step + 1}: update skipped: non-finite gradient in ${nonFinite}`);
    }
    const lossValue = (await value.data())[0]!;
    value.dispose();
    tokens += batch.n * batch.t;
    if (step % 10 === 0 || step === stopAt - 1) {
      const s = (performance.now() - t0) / 1000;
      console.log(
        `step ${step + 1}/${steps} loss ${lossValue.toFixed(4)} lr ${lr.toExponential(2)} ` +
          `${(tokens / s).toFixed(0)} tok/s ${s.toFixed(0)} s`,
      );
    }
    if ((step + 1) % evalEvery === 0 || step === stopAt - 1) {
      const res = await evaluatePolicy(model, tokenizer, evalSet.map((p) => ({ ...p })), {
        renderPrompt: render,
        maxNewTokens: config.eval.max_new_tokens,
        batchSize: config.eval.batch_size,
      });
      const s = (performance.now() - t0) / 1000;
      console.log(
        `eval step ${step + 1}: dev accuracy ${(100 * res.accuracy).toFixed(1)}% ` +
          `format ${(100 * res.formatRate).toFixed(1)}% (${s.toFixed(0)} s) e.g. ${
            JSON.stringify(res.samples[0]!.completion)
          }`,
      );
      const state = {
        kind: "sft",
        step: step + 1,
        seed,
        lr: peakLr,
        schedule_steps: steps,
        batch_size: batchSize,
        correction_frac: correctionFrac,
        layer2_frac: layer2Frac,
        dev_accuracy: res.accuracy,
        seconds: Math.round(s),
      };
      if (args.values.snapshots === true) {
        await saveCheckpoint(`${out}-step${step + 1}`, model, tokenizer, state);
      }
      if (step === stopAt - 1) await saveCheckpoint(out, model, tokenizer, state);
    }
  }
  return 0;
}

if (import.meta.main) await runMain(main);
