/**
 * Verifier: scores every rollout with the run's scorer (an answer checker plus weighted
 * reward functions, see `verifiers/reward.ts`; by default the exact integer answer after
 * `</think>`, reward 1 or 0) and routes the result: evaluation rollouts to the `eval` sink,
 * training rollouts to the RefPolicy when it is in the graph, else to the Learner.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type { Rollouts, Scored } from "./messages.ts";
import {
  correctReward,
  createScorer,
  integerChecker,
  type RewardSample,
  type Scorer,
} from "../verifiers/reward.ts";

/** Input of {@link verifier}. */
export interface VerifierInput {
  /** Where scored training rollouts go: "ref_policy" or "learner". */
  trainTarget: string;
  /** Where scored evaluation rollouts go. @default "eval" */
  evalTarget?: string;
  /**
   * Scores a batch of completions. @default exact integer match, reward 1 or 0
   * (`createScorer(integerChecker, [{ name: "correct", fn: correctReward, weight: 1 }])`)
   */
  score?: Scorer;
}

interface VerifierState {
  input: VerifierInput;
  score: Scorer;
}

/** The scorer used when none is given: exact integer answer, reward 1 or 0. */
export const DEFAULT_SCORER: Scorer = createScorer(integerChecker, [
  { name: "correct", fn: correctReward, weight: 1 },
]);

/** The Verifier actor. */
export const verifier: ActorLogic<VerifierState, Rollouts, VerifierInput> = {
  accepts: ["Rollouts"],
  init(input) {
    return { input, score: input.score ?? DEFAULT_SCORER };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Rollouts": {
        const t0 = performance.now();
        const samples: RewardSample[] = message.rollouts.map((r) => {
          const q = message.queries[r.queryIndex]!;
          return {
            prompt: q.prompt,
            completion: r.text,
            answer: String(q.answer),
            metadata: {
              id: q.id,
              purpose: message.purpose,
              label: message.label,
              step: message.step,
              finishReason: r.finishReason,
            },
          };
        });
        const verdicts = await state.score(samples);
        const { type: _t, ...rest } = message;
        const scored: Scored = {
          ...rest,
          type: "Scored",
          verdicts,
          timings: { ...message.timings, verifier: (performance.now() - t0) / 1000 },
        };
        const target = message.purpose === "eval"
          ? state.input.evalTarget ?? "eval"
          : state.input.trainTarget;
        await ctx.send(target, scored);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
};
