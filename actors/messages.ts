/**
 * Every message the actors exchange, as zod schemas with a literal `type`, joined in one
 * discriminated union. In-process transports pass them as they are; a transport that crosses
 * a process boundary validates them on receipt with {@link MessageSchema}.
 *
 * @module
 */
import { z } from "zod";
import { VerdictSchema } from "../verifiers/verdict.ts";
export { type Verdict, VerdictSchema } from "../verifiers/verdict.ts";

/** Sampling parameters of one `Generate` request. */
export const SamplingParamsSchema = z.object({
  maxNewTokens: z.number().int().min(1),
  temperature: z.number().positive(),
  topP: z.number().gt(0).max(1),
  topK: z.number().int().min(0),
  greedy: z.boolean(),
});
/** Sampling parameters. */
export type SamplingParams = z.infer<typeof SamplingParamsSchema>;

/** One query: the problem, its gold answer, and the rendered, tokenized prompt. */
export const QuerySchema = z.object({
  id: z.string(),
  question: z.string(),
  answer: z.union([z.number(), z.string()]),
  /** The rendered prompt text (what reward functions see as `prompt`). */
  prompt: z.string(),
  promptIds: z.array(z.number().int()),
  /**
   * The guide phrase this query ends with (MGRPO's q'_i: p_guide), carried to the step's
   * samples so a person sees which phrase each correction answered.
   */
  guidePhrase: z.string().optional(),
});
/** One query. */
export type Query = z.infer<typeof QuerySchema>;

/** Driver → PromptSource: produce the prompts of training step `step`. */
export const NextSchema = z.object({ type: z.literal("Next"), step: z.number().int().min(1) });

/** Driver → PromptSource: route a fixed evaluation set through the graph. */
export const EvaluateSchema = z.object({
  type: z.literal("Evaluate"),
  label: z.string(),
  queries: z.array(QuerySchema),
  params: SamplingParamsSchema,
  /** Rows per generation batch (bounds memory); the Sampler's default when absent. */
  batchSize: z.number().int().min(1).optional(),
});

/** PromptSource → Sampler: sample `n` completions for each query. */
export const GenerateSchema = z.object({
  type: z.literal("Generate"),
  purpose: z.enum(["train", "eval"]),
  step: z.number().int(),
  label: z.string(),
  queries: z.array(QuerySchema),
  n: z.number().int().min(1),
  params: SamplingParamsSchema,
  /** Rows per generation batch (bounds memory); the Sampler's default when absent. */
  batchSize: z.number().int().min(1).optional(),
});

/** One sampled completion. */
export const RolloutSchema = z.object({
  queryIndex: z.number().int().min(0),
  completionIds: z.array(z.number().int()),
  logprobs: z.array(z.number()),
  text: z.string(),
  finishReason: z.enum(["stop", "length"]),
});
/** One sampled completion. */
export type Rollout = z.infer<typeof RolloutSchema>;

/** Sampler → Verifier: completions grouped by query (`n` consecutive rollouts per query). */
export const RolloutsSchema = GenerateSchema.omit({ type: true, params: true, batchSize: true })
  .extend({
    type: z.literal("Rollouts"),
    policyVersion: z.number().int().min(0),
    rollouts: z.array(RolloutSchema),
    /**
     * Seconds each actor on the way spent on this batch, by actor name, measured by the
     * actor itself (in one thread, wall time around a handler would include other actors).
     */
    timings: z.record(z.string(), z.number().min(0)),
  });

/** Verifier → RefPolicy / Learner / eval sink: rollouts with rewards. */
export const ScoredSchema = RolloutsSchema.omit({ type: true }).extend({
  type: z.literal("Scored"),
  verdicts: z.array(VerdictSchema),
  /** Per-token reference log-probs, one array per rollout (set by RefPolicy when β > 0). */
  refLogprobs: z.array(z.array(z.number())).optional(),
  /** Per-token advantages, one array per rollout (set by PPO's Critic from GAE). */
  tokenAdvantages: z.array(z.array(z.number())).optional(),
});

/** A scored batch as one part of a multi-part training step (MGRPO's two layers). */
export const TrainPartSchema = z.object({
  scored: ScoredSchema,
  /** Weight of this part's loss. */
  weight: z.number().min(0),
  /** Prefix of this part's metric keys ("" or e.g. "layer2/"). */
  prefix: z.string(),
  /** Rows the sender selected; all when absent. */
  keep: z.array(z.boolean()).optional(),
  /**
   * Index of the part this one answers: each query of this part was built from one rollout of
   * that part (MGRPO's Layer 2 follows Layer 1). The step's samples then show each rollout of
   * that part with every answer to it.
   */
  follows: z.number().int().min(0).optional(),
  /**
   * With `follows`: query k of this part was built from rollout `sources[k]` of the part it
   * follows (a rollout whose query was not sampled has none). Query k from rollout k when
   * absent.
   */
  sources: z.array(z.number().int().min(0)).optional(),
  /**
   * Sampling temperature of this part's rollouts: the Learner and RefPolicy take this part's
   * log-probs at it (MGRPO's `layer2_temperature`). Their own temperature when absent.
   */
  temperature: z.number().positive().optional(),
});

/** Corrector → (RefPolicy →) Learner: the parts of one training step. */
export const TrainBatchSchema = z.object({
  type: z.literal("TrainBatch"),
  step: z.number().int().min(1),
  parts: z.array(TrainPartSchema).min(1),
  /** One optimizer step on the weighted sum, or one step per part. */
  update: z.enum(["joint", "sequential"]),
  /** Metrics computed by the sender (e.g. `mgrpo/*`). */
  metrics: z.record(z.string(), z.number()),
});

/** Learner → Sampler: new policy weights (Hugging Face names and layout). */
export const WeightsSchema = z.object({
  type: z.literal("Weights"),
  version: z.number().int().min(0),
  tensors: z.record(z.string(), z.instanceof(Float32Array)),
});

/**
 * What a resumed run needs from one stateful actor: JSON `state` (a cursor, RNG words, a
 * coefficient) and binary `files` (e.g. a value model's weights), written into the checkpoint.
 */
export const ActorStateSchema = z.object({
  state: z.record(z.string(), z.unknown()),
  files: z.record(z.string(), z.instanceof(Uint8Array)),
});

/**
 * Driver → stateful actor, at a step boundary (every actor idle): report your state as an
 * `ActorSnapshot` to the `events` sink. Sent before a checkpoint, so the checkpoint holds
 * every actor's state as of the same step.
 */
export const SnapshotSchema = z.object({
  type: z.literal("Snapshot"),
  step: z.number().int().min(0),
});

/** Stateful actor → driver (`events` sink): the answer to a `Snapshot`. */
export const ActorSnapshotSchema = ActorStateSchema.extend({
  type: z.literal("ActorSnapshot"),
  actor: z.string(),
  step: z.number().int().min(0),
});

/** Driver → stateful actor, before a resumed run's first `Next`: continue from a snapshot. */
export const RestoreSchema = ActorStateSchema.extend({
  type: z.literal("Restore"),
  step: z.number().int().min(0),
});

/**
 * Driver → Learner: write a checkpoint now. `actors` are the other actors' snapshots of the
 * same step: their `state` goes into `trainer_state.json` under `actors.<name>`, their files
 * into the folder as `<name>.<file>`, all under the same manifest.
 */
export const CheckpointSchema = z.object({
  type: z.literal("Checkpoint"),
  step: z.number().int().min(0),
  path: z.string(),
  /** Extra trainer state (the driver's own counters) merged into `trainer_state.json`. */
  state: z.record(z.string(), z.unknown()).optional(),
  actors: z.record(z.string(), ActorStateSchema).optional(),
});

/** Learner → driver: a checkpoint was written. */
export const CheckpointSavedSchema = z.object({
  type: z.literal("CheckpointSaved"),
  step: z.number().int().min(0),
  path: z.string(),
});

/**
 * Driver → actors: live settings changed between steps (`PATCH /config`). Every field is
 * optional; an actor applies the ones it uses and ignores the rest. Sent at a step boundary,
 * so it reaches every mailbox before the next step's messages.
 */
export const ConfigureSchema = z.object({
  type: z.literal("Configure"),
  /**
   * Live config values by dotted field (`learner.lr`, `sampler.temperature`, `grpo.beta`,
   * a plug-in's `rloo.<field>`): each actor applies the ones it uses; an absent field is
   * unchanged. Which fields are live is declared by the run's algorithm (`liveFields`).
   */
  values: z.record(z.string(), z.unknown()),
});

/**
 * One scored completion as a person reads it in a step's samples: its text, reward, the
 * advantage it was trained with and the verifier's verdict.
 */
export const SampleCompletionSchema = z.object({
  /** The completion text. */
  text: z.string(),
  /** Its summed reward; `null` when every reward function abstained. */
  reward: z.number().nullable(),
  /**
   * The advantage the Learner trained this row with (PPO: the mean of its per-token
   * advantages); `null` for a row left out of the update (dropped by the sender or the
   * algorithm, no reward, or a truncated completion masked out).
   */
  advantage: z.number().nullable(),
  /** Whether the answer checker accepted it. */
  correct: z.boolean().optional(),
  /** The verifier's reason (`"correct"`, `"wrong answer"`, `"no </think> tag"`, ...). */
  reason: z.string(),
});
/** One scored completion of a step's samples. */
export type SampleCompletion = z.infer<typeof SampleCompletionSchema>;

/**
 * One prompt of a training step with all G of its completions. Under MGRPO each Layer-1
 * completion o_i also carries its q'_i's guide phrase and all H corrections õ_ij; `discarded`
 * marks an o_i whose corrections were left out of the update (the paper's selection: o_i
 * wrong and all H corrections wrong; also a q'_i too long to sample). The same JSON is a
 * line's `groups` in `<run dir>/samples.jsonl` and the body of `GET /samples`.
 */
export const SampleGroupSchema = z.object({
  /** The training step. */
  step: z.number().int().min(1),
  /** The question of the prompt. */
  prompt: z.string(),
  /** The prompt's completions, in sampling order. */
  completions: z.array(SampleCompletionSchema.extend({
    /** MGRPO: the guide phrase of this completion's correction query q'_i. */
    guidePhrase: z.string().optional(),
    /** MGRPO: its corrections were left out of the update. */
    discarded: z.boolean().optional(),
    /** MGRPO: its H corrections, in sampling order (none when q'_i was not sampled). */
    corrections: z.array(SampleCompletionSchema).optional(),
  })),
});
/** One prompt of a step's samples. */
export type SampleGroup = z.infer<typeof SampleGroupSchema>;

/** Learner → driver: the metrics of one training step (slash-namespaced keys). */
export const StepStatsSchema = z.object({
  type: z.literal("StepStats"),
  step: z.number().int().min(1),
  policyVersion: z.number().int().min(0),
  metrics: z.record(z.string(), z.number()),
  /** The first prompts of the step, each with its completions (see {@link SampleGroupSchema}). */
  samples: z.array(SampleGroupSchema),
});

/** Any message of the graph. */
export const MessageSchema = z.discriminatedUnion("type", [
  NextSchema,
  EvaluateSchema,
  GenerateSchema,
  RolloutsSchema,
  ScoredSchema,
  TrainBatchSchema,
  WeightsSchema,
  CheckpointSchema,
  CheckpointSavedSchema,
  ConfigureSchema,
  StepStatsSchema,
  SnapshotSchema,
  ActorSnapshotSchema,
  RestoreSchema,
]);

/** `Next` message. */
export type Next = z.infer<typeof NextSchema>;
/** `Evaluate` message. */
export type Evaluate = z.infer<typeof EvaluateSchema>;
/** `Generate` message. */
export type Generate = z.infer<typeof GenerateSchema>;
/** `Rollouts` message. */
export type Rollouts = z.infer<typeof RolloutsSchema>;
/** `Scored` message. */
export type Scored = z.infer<typeof ScoredSchema>;
/** `TrainBatch` message. */
export type TrainBatch = z.infer<typeof TrainBatchSchema>;
/** `Weights` message. */
export type Weights = z.infer<typeof WeightsSchema>;
/** `Checkpoint` message. */
export type Checkpoint = z.infer<typeof CheckpointSchema>;
/** `CheckpointSaved` message. */
export type CheckpointSaved = z.infer<typeof CheckpointSavedSchema>;
/** `Configure` message. */
export type Configure = z.infer<typeof ConfigureSchema>;
/** `StepStats` message. */
export type StepStats = z.infer<typeof StepStatsSchema>;
/** One actor's resumable state. */
export type ActorState = z.infer<typeof ActorStateSchema>;
/** `Snapshot` message. */
export type Snapshot = z.infer<typeof SnapshotSchema>;
/** `ActorSnapshot` message. */
export type ActorSnapshot = z.infer<typeof ActorSnapshotSchema>;
/** `Restore` message. */
export type Restore = z.infer<typeof RestoreSchema>;
/** Any message of the graph. */
export type Message = z.infer<typeof MessageSchema>;
