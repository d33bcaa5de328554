/**
 * The verdict on one completion: what a verifier (an answer checker with reward functions)
 * says of it. The Verifier actor sends verdicts in `Scored` messages; the verifiers produce
 * them without knowing the actors.
 *
 * @module
 */
import { z } from "zod";

/** The verdict on one completion. */
export const VerdictSchema = z.object({
  /** The weighted reward; `null` when every reward function abstained (the sample is skipped). */
  reward: z.number().nullable(),
  correct: z.boolean(),
  parsed: z.string().nullable(),
  reason: z.string(),
  /** Each reward function's raw value by name (`null` = abstained), when there are several. */
  components: z.record(z.string(), z.number().nullable()).optional(),
});
/** The verdict on one completion. */
export type Verdict = z.infer<typeof VerdictSchema>;
