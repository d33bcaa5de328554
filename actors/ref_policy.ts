/**
 * RefPolicy: a frozen copy of the initial policy. Adds per-token reference log-probs of every
 * completion (teacher forced) to the scored rollouts and passes them to the Learner. The graph
 * leaves it out when β = 0.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type { Configure, Scored, TrainBatch } from "./messages.ts";
import type { Transformer } from "../model/transformer.ts";
import { completionLogprobs } from "../model/sampling.ts";

/** Input of {@link refPolicy}. */
export interface RefPolicyInput {
  model: Transformer;
  padId: number;
  /** Temperature the log-probs are computed at (the sampler's). */
  temperature: number;
  /** Rows per forward pass. @default 64 */
  maxBatch?: number;
  /** Where the batches go next. @default "learner" (PPO: "critic") */
  target?: string;
}

/** Returns `scored` with the reference log-probs of its completions and the time taken. */
async function withReference(
  state: RefPolicyInput,
  scored: Scored,
  temperature = state.temperature,
): Promise<Scored> {
  const t0 = performance.now();
  const maxBatch = state.maxBatch ?? 64;
  const refLogprobs: number[][] = [];
  for (let i = 0; i < scored.rollouts.length; i += maxBatch) {
    const chunk = scored.rollouts.slice(i, i + maxBatch);
    refLogprobs.push(
      ...await completionLogprobs(
        state.model,
        chunk.map((r) => scored.queries[r.queryIndex]!.promptIds),
        chunk.map((r) => r.completionIds),
        { padId: state.padId, temperature },
      ),
    );
  }
  return {
    ...scored,
    refLogprobs,
    timings: { ...scored.timings, ref_policy: (performance.now() - t0) / 1000 },
  };
}

/** The RefPolicy actor: handles single batches and multi-part training batches. */
export const refPolicy: ActorLogic<
  RefPolicyInput,
  Scored | TrainBatch | Configure,
  RefPolicyInput
> = {
  accepts: ["Scored", "TrainBatch", "Configure"],
  init(input) {
    return { ...input };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Configure":
        // Reference log-probs follow the sampling temperature, as the Learner's do.
        if ("sampler.temperature" in message.values) {
          state.temperature = message.values["sampler.temperature"] as number;
        }
        return state;
      case "Scored":
        await ctx.send(state.target ?? "learner", await withReference(state, message));
        return state;
      case "TrainBatch": {
        const parts = [];
        for (const part of message.parts) {
          parts.push({
            ...part,
            scored: await withReference(state, part.scored, part.temperature),
          });
        }
        await ctx.send(state.target ?? "learner", { ...message, parts });
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
  close(state) {
    state.model.dispose();
  },
};
