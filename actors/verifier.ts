/**
 * Verifier: scores every rollout with the reward function (exact integer answer after
 * `</think>`: reward 1 or 0, a malformed output gets 0 and a reason) and routes the result:
 * evaluation rollouts to the `eval` sink, training rollouts to the RefPolicy when it is in
 * the graph, else to the Learner.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type { Rollouts, Scored, Verdict } from "./messages.ts";
import { verifyIntegerAnswer } from "../verifiers/integer_answer.ts";

/** Input of {@link verifier}. */
export interface VerifierInput {
  /** Where scored training rollouts go: "ref_policy" or "learner". */
  trainTarget: string;
  /** Where scored evaluation rollouts go. @default "eval" */
  evalTarget?: string;
  /** The reward function. @default exact integer match */
  reward?: (completion: string, gold: number | string) => Verdict;
}

/** The Verifier actor. */
export const verifier: ActorLogic<VerifierInput, Rollouts, VerifierInput> = {
  init(input) {
    return input;
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Rollouts": {
        const t0 = performance.now();
        const reward = state.reward ?? verifyIntegerAnswer;
        const verdicts = message.rollouts.map((r) =>
          reward(r.text, message.queries[r.queryIndex]!.answer)
        );
        const { type: _t, ...rest } = message;
        const scored: Scored = {
          ...rest,
          type: "Scored",
          verdicts,
          timings: { ...message.timings, verifier: (performance.now() - t0) / 1000 },
        };
        const target = message.purpose === "eval" ? state.evalTarget ?? "eval" : state.trainTarget;
        await ctx.send(target, scored);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
};
