/**
 * Corrector (MGRPO Layer 2): for every scored Layer-1 response o_i it builds
 * q'_i = SystemPrompt_L2 + user q + assistant o_i + p_guide (Eq. 5, a guide phrase drawn at
 * random from the pool; or the appendix form with `mgrpo.guide_position: in_think`) and asks the Sampler for H corrections each. When the scored
 * corrections come back it classifies each (o_i, õ_ij), selects the Layer-2 groups (the
 * paper's rule by default) and sends both layers to the Learner as one training batch.
 *
 * @module
 */
import { fitPrompt } from "../../prompts/fit_prompt.ts";
import type { ActorLogic } from "../../actors/runtime/mod.ts";
import type {
  Configure,
  Generate,
  Query,
  Restore,
  SamplingParams,
  Scored,
  Snapshot,
  TrainBatch,
} from "../../actors/messages.ts";
import { restoredRng, sendSnapshot } from "../../actors/snapshot.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { Rng } from "../../util/rng.ts";
import { buildLayer2Prompt, drawGuidePhrase, layer2SystemPrompt } from "./prompt.ts";
import { type MgrpoConfig } from "./config.ts";
import { mgrpoMetrics } from "./metrics.ts";
import { selectLayer2Groups } from "./selection.ts";

/** Input of {@link corrector}. */
export interface CorrectorInput {
  tokenizer: Tokenizer;
  config: MgrpoConfig;
  /** Jinja chat template; ChatML when absent. */
  template?: string;
  seed: number;
  /** Sampling parameters of the H corrections (the Sampler's). */
  sampling: SamplingParams;
  /** Where the training batch goes: "ref_policy" or "learner". */
  target: string;
  /** Guide-phrase RNG state (when resuming). */
  rngState?: ReturnType<Rng["getState"]>;
  /** Longest q'_i in tokens (`prompts.max_prompt_tokens`, resolved). @default Infinity */
  maxPromptTokens?: number;
  /**
   * A longer q'_i: `"reject"` samples no corrections for it (its group counts as wrong and is
   * left out of the update, `mgrpo/rejected_prompts`); `"truncate"` keeps its last
   * `maxPromptTokens` tokens (`mgrpo/truncated_prompts`). @default "reject"
   */
  onLongPrompt?: "reject" | "truncate";
}

/** State of {@link corrector}. */
export interface CorrectorState {
  input: CorrectorInput;
  /** The guide-phrase RNG. */
  rng: Rng;
  /** Layer-1 batches waiting for their corrections, by step, with the seconds spent on them. */
  pending: Map<
    number,
    {
      layer1: Scored;
      phrases: number[];
      /** Indices i of the o_i whose q'_i was sampled (the others did not fit). */
      sampled: number[];
      truncated: number;
      seconds: number;
      /** The temperature the corrections were sampled at. */
      temperature: number;
    }
  >;
}

/**
 * The H corrections' sampling: the Sampler's, at `mgrpo.layer2_temperature` and with
 * `mgrpo.layer2_max_new_tokens` new tokens when set.
 */
function layer2Sampling(input: Pick<CorrectorInput, "config" | "sampling">): SamplingParams {
  const { layer2_temperature: t, layer2_max_new_tokens: n } = input.config;
  return {
    ...input.sampling,
    ...(t === undefined ? {} : { temperature: t }),
    ...(n === undefined ? {} : { maxNewTokens: n }),
  };
}

/** The Corrector actor. */
export const corrector: ActorLogic<
  CorrectorState,
  Scored | Configure | Snapshot | Restore,
  CorrectorInput
> = {
  accepts: ["Scored", "Configure", "Snapshot", "Restore"],
  init(input) {
    const rng = new Rng(input.seed).fork("guide-phrases");
    if (input.rngState) rng.setState(input.rngState);
    return { input, rng, pending: new Map() };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Snapshot":
        if (state.pending.size > 0) {
          throw new RangeError(
            `Cannot snapshot the corrector: steps still wait for their corrections: ` +
              `current value is ${JSON.stringify([...state.pending.keys()])}`,
          );
        }
        await sendSnapshot(ctx, message.step, { rng: [...state.rng.getState()] });
        return state;
      case "Restore":
        state.rng.setState(restoredRng(message, ctx.name));
        return state;
      case "Configure": {
        // Live settings apply to the next Layer-1 batch (a pending one keeps its phrases).
        const { sampling, config } = state.input;
        const v = message.values;
        state.input = {
          ...state.input,
          sampling: {
            ...sampling,
            ...("sampler.temperature" in v
              ? { temperature: v["sampler.temperature"] as number }
              : {}),
            ...("sampler.top_p" in v ? { topP: v["sampler.top_p"] as number } : {}),
          },
          config: {
            ...config,
            ...("mgrpo.guide_phrases" in v
              ? { guide_phrases: v["mgrpo.guide_phrases"] as string[] }
              : {}),
            ...("mgrpo.num_corrections" in v
              ? { num_corrections: v["mgrpo.num_corrections"] as number }
              : {}),
          },
        };
        return state;
      }
      case "Scored": {
        const t0 = performance.now();
        const { config, tokenizer } = state.input;
        if (message.label !== "layer2") {
          // Layer 1: one q'_i per response, H corrections each.
          const phrases: number[] = [];
          const queries: Query[] = message.rollouts.map((r, i) => {
            const q = message.queries[r.queryIndex]!;
            const phrase = drawGuidePhrase(state.rng, config.guide_phrases);
            phrases.push(config.guide_phrases.indexOf(phrase));
            const text = buildLayer2Prompt(q.question, r.text, phrase, {
              systemPrompt: layer2SystemPrompt(config.layer2_system_prompt),
              separator: config.guide_separator,
              position: config.guide_position,
              ...(state.input.template === undefined ? {} : { template: state.input.template }),
            });
            return {
              id: `${q.id}/o${i}`,
              question: q.question,
              answer: q.answer,
              prompt: text,
              promptIds: tokenizer.encode(text),
              guidePhrase: phrase,
            };
          });
          // A q'_i longer than the prompt limit is rejected or cut to its last tokens.
          const max = state.input.maxPromptTokens ?? Infinity;
          const sampled: number[] = [];
          let truncated = 0;
          queries.forEach((query, i) => {
            const fit = fitPrompt(query.promptIds, max, state.input.onLongPrompt);
            if (!fit) return;
            if (fit.truncated) {
              query.promptIds = [...fit.ids];
              truncated++;
            }
            sampled.push(i);
          });
          const params = layer2Sampling(state.input);
          state.pending.set(message.step, {
            layer1: message,
            phrases,
            sampled,
            truncated,
            seconds: (performance.now() - t0) / 1000,
            temperature: params.temperature,
          });
          const generate: Generate = {
            type: "Generate",
            purpose: "train",
            step: message.step,
            label: "layer2",
            queries: sampled.map((i) => queries[i]!),
            n: config.num_corrections,
            params,
          };
          await ctx.send("sampler", generate);
          return state;
        }
        const waiting = state.pending.get(message.step);
        if (!waiting) {
          throw new RangeError(
            `Layer-2 rollouts for an unknown step: current value is ${message.step}`,
          );
        }
        state.pending.delete(message.step);
        const { layer1, phrases, sampled, truncated, seconds, temperature } = waiting;
        const h = message.n;
        const layer1Correct = layer1.verdicts.map((v) => v.correct);
        // Rollouts come query-major over the sampled q'_i; a rejected q'_i counts as H wrong
        // attempts and is left out of the update.
        const at = new Map(sampled.map((i, k) => [i, k]));
        const layer2Correct = layer1Correct.map((_, i) => {
          const k = at.get(i);
          return k === undefined
            ? new Array<boolean>(h).fill(false)
            : message.verdicts.slice(k * h, (k + 1) * h).map((v) => v.correct);
        });
        const keep = selectLayer2Groups(layer1Correct, layer2Correct, config.selection)
          .map((kept, i) => kept && at.has(i));
        const metrics = mgrpoMetrics(layer1Correct, layer2Correct, keep);
        metrics["mgrpo/rejected_prompts"] = layer1Correct.length - sampled.length;
        metrics["mgrpo/truncated_prompts"] = truncated;
        config.guide_phrases.forEach((_, k) => {
          metrics[`mgrpo/guide_phrase_${k}`] = phrases.filter((p) => p === k).length;
        });
        const batch: TrainBatch = {
          type: "TrainBatch",
          step: message.step,
          update: config.update,
          metrics,
          parts: [
            { scored: layer1, weight: config.layer1_weight, prefix: "" },
            {
              // The Corrector reports its own time (both visits) with the Layer-2 timings.
              scored: {
                ...message,
                timings: {
                  ...message.timings,
                  corrector: seconds + (performance.now() - t0) / 1000,
                },
              },
              weight: config.layer2_weight,
              prefix: "layer2/",
              follows: 0,
              sources: sampled,
              temperature,
              keep: message.rollouts.map((r) => keep[sampled[r.queryIndex]!]!),
            },
          ],
        };
        await ctx.send(state.input.target, batch);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
};
