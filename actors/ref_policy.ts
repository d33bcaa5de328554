/**
 * RefPolicy: a frozen copy of the initial policy. Adds per-token reference log-probs of every
 * completion (teacher forced) to the scored rollouts and passes them to the Learner. The graph
 * leaves it out when β = 0.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type { Scored } from "./messages.ts";
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
}

/** The RefPolicy actor. */
export const refPolicy: ActorLogic<RefPolicyInput, Scored, RefPolicyInput> = {
  init(input) {
    return input;
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Scored": {
        const t0 = performance.now();
        const maxBatch = state.maxBatch ?? 64;
        const refLogprobs: number[][] = [];
        for (let i = 0; i < message.rollouts.length; i += maxBatch) {
          const chunk = message.rollouts.slice(i, i + maxBatch);
          refLogprobs.push(
            ...await completionLogprobs(
              state.model,
              chunk.map((r) => message.queries[r.queryIndex]!.promptIds),
              chunk.map((r) => r.completionIds),
              { padId: state.padId, temperature: state.temperature },
            ),
          );
        }
        await ctx.send("learner", {
          ...message,
          refLogprobs,
          timings: { ...message.timings, ref_policy: (performance.now() - t0) / 1000 },
        });
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
