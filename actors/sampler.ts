/**
 * Sampler: owns a copy of the policy at version v. On `Generate` it samples n completions per
 * query with the KV-cache sampler (batched), on `Weights` it loads the Learner's new version.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type { Generate, Restore, Rollout, Rollouts, Snapshot, Weights } from "./messages.ts";
import type { Transformer } from "../model/transformer.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { generate } from "../model/sampling.ts";
import { Rng, type RngState } from "../util/rng.ts";
import { restoredRng, sendSnapshot } from "./snapshot.ts";
import type { OpenAiSampler } from "./openai_sampler.ts";

/** Input of {@link sampler}. */
export interface SamplerInput {
  model: Transformer;
  tokenizer: Tokenizer;
  seed: number;
  /** Rows per generation batch (bounds memory). @default 128 */
  maxBatch?: number;
  /** Version of the weights the model holds. @default 0 */
  version?: number;
  /**
   * State of the training RNG to start from. The Sampler records it here after each
   * training `Generate` (and `Restore`), so that a restarted Sampler (`runtime.max_restarts`)
   * samples the redelivered message as a first attempt would have. @default undefined
   */
  rngState?: RngState;
  /**
   * Sample through an OpenAI-compatible server (`sampler.backend: openai`) instead of
   * `model`; `Weights` then update `model` and push it to the server. @default undefined
   */
  openai?: OpenAiSampler;
  /**
   * How many policy versions the weights may lag behind a training `Generate` for step s
   * (which wants version s - 1): a `Generate` further behind fails the Sampler rather than
   * sample off-policy (`sampler.max_staleness`). Unchecked when absent. @default undefined
   */
  maxStaleness?: number;
}

/** State of {@link sampler}. */
export interface SamplerState {
  input: SamplerInput;
  /** The training RNG: its state is part of every checkpoint. */
  rng: Rng;
  /** Evaluations draw from their own stream, so they never shift the training samples. */
  evalRng: Rng;
  version: number;
}

/** The Sampler actor. */
export const sampler: ActorLogic<
  SamplerState,
  Generate | Weights | Snapshot | Restore,
  SamplerInput
> = {
  accepts: ["Generate", "Weights", "Snapshot", "Restore"],
  init(input) {
    return {
      input,
      rng: input.rngState ? Rng.fromState(input.rngState) : new Rng(input.seed).fork("sampler"),
      evalRng: new Rng(input.seed).fork("sampler-eval"),
      version: input.version ?? 0,
    };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Snapshot":
        await sendSnapshot(ctx, message.step, { rng: [...state.rng.getState()] });
        return state;
      case "Restore":
        state.rng.setState(restoredRng(message, ctx.name));
        state.input.rngState = state.rng.getState();
        return state;
      case "Weights":
        // No tensors: the Sampler shares the Learner's model object (sampler.share_weights).
        if (Object.keys(message.tensors).length > 0) state.input.model.loadWeights(message.tensors);
        state.version = state.input.openai
          ? await state.input.openai.syncWeights(
            state.input.model,
            state.input.tokenizer,
            message.version,
          )
          : message.version;
        // A restarted Sampler (runtime.max_restarts) re-runs init on its input, whose model
        // now holds these weights: keep the version with them.
        state.input.version = state.version;
        return state;
      case "Generate": {
        const lag = message.step - 1 - state.version;
        const maxStaleness = state.input.maxStaleness;
        if (message.purpose === "train" && maxStaleness !== undefined && lag > maxStaleness) {
          throw new RangeError(
            `Cannot sample step ${message.step}: the weights are ${lag} versions old (version ${state.version}), more than sampler.max_staleness: current value is ${maxStaleness}`,
          );
        }
        const t0 = performance.now();
        const { model, tokenizer } = state.input;
        const prompts: number[][] = [];
        const index: number[] = [];
        message.queries.forEach((q, i) => {
          for (let j = 0; j < message.n; j++) {
            prompts.push(q.promptIds);
            index.push(i);
          }
        });
        const rollouts: Rollout[] = [];
        if (state.input.openai) {
          const openai = state.input.openai;
          // A resumed run's server still holds the starting weights: push the policy first.
          if (openai.options.weightSync !== "none" && openai.serverVersion !== state.version) {
            await openai.syncWeights(model, tokenizer, state.version);
          }
          rollouts.push(
            ...await openai.generate(
              message.queries,
              message.n,
              message.params,
              tokenizer,
              message.purpose === "eval" ? state.evalRng : state.rng,
            ),
          );
        } else {
          const maxBatch = message.batchSize ?? state.input.maxBatch ?? 128;
          for (let start = 0; start < prompts.length; start += maxBatch) {
            const gens = await generate(model, prompts.slice(start, start + maxBatch), {
              ...message.params,
              stopIds: tokenizer.stopIds,
              padId: tokenizer.padId,
              rng: message.purpose === "eval" ? state.evalRng : state.rng,
            });
            gens.forEach((g, j) => {
              rollouts.push({
                queryIndex: index[start + j]!,
                completionIds: g.tokens,
                logprobs: g.logprobs,
                text: tokenizer.decode(g.tokens, { skipSpecialTokens: true }),
                finishReason: g.finishReason,
              });
            });
          }
        }
        const out: Rollouts = {
          type: "Rollouts",
          purpose: message.purpose,
          step: message.step,
          label: message.label,
          queries: message.queries,
          n: message.n,
          policyVersion: state.version,
          rollouts,
          timings: { sampler: (performance.now() - t0) / 1000 },
        };
        // What a restart starts from: the RNG after the last Generate that succeeded.
        if (message.purpose === "train") state.input.rngState = state.rng.getState();
        await ctx.send("verifier", out);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
};
