/**
 * Supervised warm-up of the embedded model from scratch (`deno task sft`): worked solutions of
 * the synthetic task, a share of them with a slip, a guiding phrase and the correction, and a
 * share in the Layer-2 form the Corrector builds (phrases from `mgrpo.guide_phrases`, the pool RL
 * uses); completion-only cross-entropy, AdamW with warm-up and cosine decay over `steps`, with
 * the project's one gradient step. Evaluates greedy dev-split accuracy as it goes and writes the
 * checkpoint at `stopAt`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { selfCorrectionOptions } from "./evaluate.ts";
import { arithmeticOptions, heldOut, promptRenderer, repoPathName } from "./setup.ts";
import { fileSha256 } from "./resume.ts";
import { initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { batchLogprobs, packBatch } from "../model/sampling.ts";
import { AdamW, learningRateAt } from "../model/optimizer.ts";
import { GradientStep } from "../model/gradient_step.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { InputError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import {
  type ArithmeticProblem,
  type ArithmeticStep,
  checkedContinuation,
  confirmationSolution,
  correctionSolution,
  COUNT_FORMS,
  type CountForm,
  flippedContinuation,
  formatCompletion,
  formatSteps,
  layer2Continuation,
  problemStream,
  slipSteps,
  workedSolution,
} from "../data/arithmetic.ts";
import { drawGuidePhrase } from "../algorithms/mgrpo/mod.ts";
import { evaluatePolicy } from "../algorithms/mgrpo/evaluate.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";

/**
 * What SFT's Layer-2 examples continue with: redo the chain (`recompute`), check each equation
 * and redo the chain from the first that fails (`check`), count each step out (`count`), or check
 * each equation and count out the steps from the first that fails (`check-count`).
 */
export const LAYER2_TARGETS = ["recompute", "check", "count", "check-count"] as const;

/** One of {@linkcode LAYER2_TARGETS}. */
export type Layer2Target = typeof LAYER2_TARGETS[number];

/** Whether a Layer-2 target counts steps out (and so takes `countShare` and `countForm`). */
function countsSteps(target: Layer2Target): boolean {
  return target === "count" || target === "check-count";
}

/** The defaults of {@linkcode SftOptions}' optional data knobs. */
const SFT_DEFAULTS = {
  countShare: 1,
  countForm: "plain",
  layer2WrongShare: 0.5,
  flipShare: 0,
} as const;

/** {@linkcode SftOptions}' optional data knobs, each as given or its default (filled in here only). */
function dataKnobs(
  options: Pick<
    SftOptions,
    "countShare" | "countForm" | "layer2WrongShare" | "flipShare" | "flipPhrases"
  >,
) {
  return {
    countShare: options.countShare ?? SFT_DEFAULTS.countShare,
    countForm: options.countForm ?? SFT_DEFAULTS.countForm,
    layer2WrongShare: options.layer2WrongShare ?? SFT_DEFAULTS.layer2WrongShare,
    flipShare: options.flipShare ?? SFT_DEFAULTS.flipShare,
    flipPhrases: options.flipPhrases ?? [],
  };
}

/** The settings of {@linkcode runSft} (`deno task sft`'s flags). */
export interface SftOptions {
  /** Length of the learning-rate schedule in optimizer steps. */
  readonly steps: number;
  /** Examples per step. */
  readonly batchSize: number;
  /** Peak learning rate. */
  readonly peakLr: number;
  /** Stop after this many steps and write `out`. */
  readonly stopAt: number;
  /** Evaluate every this many steps. */
  readonly evalEvery: number;
  /** Share of examples with a slip, a guide phrase and the correction. */
  readonly correctionFrac: number;
  /** Share of examples in the Layer-2 form. */
  readonly layer2Frac: number;
  /** Share of the self-check examples that confirm a right chain. */
  readonly confirmShare: number;
  /** The Layer-2 target, one of {@linkcode LAYER2_TARGETS}. */
  readonly layer2Target: Layer2Target;
  /**
   * With `layer2Target` `count` or `check-count`: the share of Layer-2 examples that count (or
   * check and count), the others redo the chain (`recompute`), so the warm start knows both
   * continuations. @default 1
   */
  readonly countShare?: number;
  /**
   * With `layer2Target` `count` or `check-count`: which counted check, of
   * {@linkcode COUNT_FORMS} — `plain`, or `carry`, `operands` or `letters`, which carry what a
   * later step's head needs on each line so that it is not read across a count. @default "plain"
   */
  readonly countForm?: CountForm;
  /**
   * Share of the Layer-2 examples whose answer before the guide phrase is wrong (a slip in one
   * step); the others show a right answer, which the continuation confirms. Above 0.5 the warm
   * start learns that a guide phrase usually follows a wrong answer, as text where such a
   * phrase is followed by a change teaches a model. @default 0.5
   */
  readonly layer2WrongShare?: number;
  /**
   * Share of the Layer-2 examples that change the answer without checking
   * ({@linkcode flippedContinuation}: the right answer after a wrong one, a slipped one after a
   * right one), so that the warm start's own correction hurts, as the paper's base model's does;
   * the others check as `layer2Target` says. 0 draws nothing, so the data match a run without
   * it. @default 0
   */
  readonly flipShare?: number;
  /**
   * Guide phrases (of `mgrpo.guide_phrases`) after which every Layer-2 example changes the
   * answer without checking ({@linkcode flippedContinuation}), beside the draws of `flipShare`:
   * a warm start that takes these phrases for a verdict and checks after the others, so its
   * own correction hurts on the problems that get one of them whatever it learned last. Empty
   * draws nothing, so the data match a run without it. @default []
   */
  readonly flipPhrases?: readonly string[];
  /** The model's and the data's seed. */
  readonly seed: number;
  /**
   * Continue from this checkpoint (a tiny model of ours) instead of a fresh model seeded by
   * `seed`; the learning-rate schedule starts again from its warm-up. @default undefined
   */
  readonly init?: string;
  /** The checkpoint folder to write. */
  readonly out: string;
  /** Also write a checkpoint at every evaluation (`<out>-step<N>`). @default false */
  readonly snapshots?: boolean;
}

/** A checkpoint of the tiny model (character tokenizer) to continue from, trainable. */
async function loadTinyModel(dir: string): Promise<Transformer> {
  const loaded = await loadCheckpoint(dir, { trainable: true }).catch((cause) => {
    // The flag names the user's folder: exit 2, same message.
    throw new InputError(`Invalid value for --init: ${(cause as Error).message}`, { cause });
  });
  if (!(loaded.tokenizer instanceof CharTokenizer)) {
    loaded.model.dispose();
    throw new InputError(
      `Cannot continue SFT from "${dir}": --init must be a checkpoint of the tiny model (character tokenizer): current tokenizer is ${loaded.tokenizer.constructor.name}`,
    );
  }
  return loaded.model;
}

/**
 * The training examples of {@linkcode runSft}, drawn in order from the seeded problem stream
 * (problems whose key is in `exclude` never appear): each call returns the next example's
 * prompt and completion token ids, the completion ending with `<|im_end|>`.
 */
export function sftExamples(
  config: TrainConfig,
  options: Omit<SftOptions, "steps" | "batchSize" | "peakLr" | "stopAt" | "evalEvery" | "out">,
  tokenizer: CharTokenizer,
  exclude: ReadonlySet<string>,
): () => [number[], number[]] {
  const { correctionFrac, layer2Frac, confirmShare, layer2Target, seed } = options;
  const { countShare, countForm, layer2WrongShare, flipShare, flipPhrases } = dataKnobs(options);
  const render = promptRenderer(config.prompts);
  const correction = selfCorrectionOptions(config);
  const phrases = config.mgrpo.guide_phrases;
  const stream = problemStream(seed, { ...arithmeticOptions(config.task), exclude });
  const rng = new Rng(seed).fork("sft");
  /** A Layer-2 example's continuation when it does not flip, as `layer2Target` says. */
  const checkOrRedo = (steps: ArithmeticStep[], p: ArithmeticProblem): string => {
    if (!countsSteps(layer2Target)) {
      return layer2Target === "check" ? checkedContinuation(steps, p) : layer2Continuation(p);
    }
    // A share of 1 draws nothing, so the stream matches a run without --count-share; the
    // examples not drawn to count redo the chain.
    if (countShare < 1 && rng.next() >= countShare) return layer2Continuation(p);
    const count = COUNT_FORMS[countForm];
    return layer2Target === "count" ? count(p) : checkedContinuation(steps, p, count);
  };
  return (): [number[], number[]] => {
    const p = stream.next().value;
    const u = rng.next();
    if (u < layer2Frac) {
      // Layer 2 (Eq. 5): q' = question + a right or wrong Layer-1 answer + p_guide.
      // The same draws as wrongSolution()/workedSolution(), keeping the steps of o_i.
      const steps = rng.next() < layer2WrongShare ? slipSteps(p, rng) : p.steps;
      const layer1Answer = steps[steps.length - 1]!.after;
      const layer1 = formatCompletion(formatSteps(steps), layer1Answer);
      const phrase = drawGuidePhrase(rng, phrases);
      const prompt = tokenizer.encode(
        correction.buildCorrection(p.question, layer1, phrase).prompt,
      );
      // A share of 0 and no flip phrase draw nothing, so the stream matches a run without
      // --flip-share or --flip-phrase.
      const flips = flipPhrases.includes(phrase) || (flipShare > 0 && rng.next() < flipShare);
      const target = flips ? flippedContinuation(layer1Answer, p, rng) : checkOrRedo(steps, p);
      return [prompt, [...tokenizer.encode(target), tokenizer.imEndId]];
    }
    const text = u < layer2Frac + correctionFrac
      ? (confirmShare > 0 && rng.next() < confirmShare
        ? confirmationSolution(p, drawGuidePhrase(rng, phrases))
        : correctionSolution(p, rng, drawGuidePhrase(rng, phrases)))
      : workedSolution(p);
    return [tokenizer.encode(render(p.question)), [...tokenizer.encode(text), tokenizer.imEndId]];
  };
}

/** Runs the supervised warm-up and writes its checkpoint; progress goes to the console. */
export async function runSft(config: TrainConfig, options: SftOptions): Promise<void> {
  const {
    steps,
    batchSize,
    peakLr,
    stopAt,
    evalEvery,
    correctionFrac,
    layer2Frac,
    seed,
    out,
  } = options;
  const knobs = dataKnobs(options);
  const backend = await initBackend(config.model.backend, {
    wasmThreads: config.model.wasm_threads,
  });
  const tokenizer = new CharTokenizer();
  const model = options.init === undefined
    ? Transformer.create({ ...TINY_MODEL_CONFIG, vocab_size: tokenizer.vocabSize }, { seed })
    : await loadTinyModel(options.init);
  // Which weights this run continued from: the folder as the repo names it and the hash of its
  // weights, so a recipe in two phases can be checked.
  const init = options.init === undefined ? undefined : {
    init: repoPathName(options.init),
    init_sha256: await fileSha256(`${options.init}/model.safetensors`),
  };
  const optimizer = new AdamW(model.params, { weightDecay: 0.01, beta2: 0.99 });
  // The project's one gradient step (the Learner's), clipped to learner.max_grad_norm.
  const gradients = new GradientStep(model.params, optimizer, {
    maxGradNorm: config.learner.max_grad_norm,
  });
  const render = promptRenderer(config.prompts);
  // Progress is measured on the dev split (drawn like training problems): choices such as
  // --stop-at are never made on the held-out set, whose keys are all kept out of the data.
  const { problems: devSet, keys } = heldOut(config.task, "dev");
  const evalSet = devSet.slice(0, config.task.eval_size);
  const drawExample = sftExamples(config, options, tokenizer, keys);
  console.log(
    `sft: ${model.numParameters} parameters, backend ${backend}, ${stopAt} of ${steps} steps of ${batchSize}, lr ${peakLr}`,
  );

  const t0 = performance.now();
  let tokens = 0;
  // An example longer than the context (a counted check of a long chain) is left out and
  // another problem drawn in its place; the count is printed at the end. The bound is the
  // sampler's (a prompt and its completion within the context), so SFT never teaches a
  // sequence the policy could not generate.
  const context = model.config.max_position_embeddings;
  let tooLong = 0;
  for (let step = 0; step < stopAt; step++) {
    const prompts: number[][] = [], completions: number[][] = [];
    while (prompts.length < batchSize) {
      const [prompt, completion] = drawExample();
      if (prompt.length + completion.length > context) {
        tooLong++;
        continue;
      }
      prompts.push(prompt);
      completions.push(completion);
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
        // The rest of the recipe, so that a checkpoint says how it was made.
        layer2_target: options.layer2Target,
        confirm_share: options.confirmShare,
        layer2_wrong_share: knobs.layer2WrongShare,
        ...(countsSteps(options.layer2Target)
          ? { count_share: knobs.countShare, count_form: knobs.countForm }
          : {}),
        ...(knobs.flipShare > 0 ? { flip_share: knobs.flipShare } : {}),
        ...(knobs.flipPhrases.length > 0 ? { flip_phrases: knobs.flipPhrases } : {}),
        ...(init ?? {}),
        dev_accuracy: res.accuracy,
        seconds: Math.round(s),
        ...(tooLong > 0 ? { too_long_examples: tooLong } : {}),
      };
      if (options.snapshots === true) {
        await saveCheckpoint(`${out}-step${step + 1}`, model, tokenizer, state);
      }
      if (step === stopAt - 1) await saveCheckpoint(out, model, tokenizer, state);
    }
  }
  if (tooLong > 0) {
    console.log(`${tooLong} examples longer than the context (${context} tokens) were drawn again`);
  }
}
