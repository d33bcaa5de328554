/**
 * The state of a live training run, independent of any transport: the HTTP app in
 * `server/app.ts` reads and drives it, the training loop feeds it and asks it, between
 * steps, whether to pause, stop or checkpoint.
 *
 * Requests (pause, resume, stop, checkpoint) take effect at the next step boundary, where the
 * loop calls {@linkcode RunControl.atStepBoundary}. Config patches change only the run's live
 * fields (the shared ones and those its algorithm declares, {@linkcode liveFieldsFor}), are
 * validated with the same zod section schemas as the YAML config and apply all or nothing.
 *
 * @module
 */
import { z } from "zod";
import { liveSectionSchemas, SHARED_LIVE_FIELDS } from "../config/schema.ts";
import { builtinAlgorithms, type TrainConfig } from "../algorithms/builtins.ts";
import { type AlgorithmPlugin } from "../algorithms/registry.ts";
import { describeConfigIssue, formatValue } from "../config/load.ts";
import type { SampleGroup } from "../actors/messages.ts";

// --- types ---

/**
 * Where a run is: `starting` until the loop reaches its first step boundary, `pausing` and
 * `stopping` while a request waits for the next boundary, `stopped` and `failed` at the end.
 */
export type RunState =
  | "starting"
  | "running"
  | "pausing"
  | "paused"
  | "stopping"
  | "stopped"
  | "failed";

/**
 * The live fields of the built-in algorithms together: the shared ones (learning rate,
 * sampling temperature and nucleus, evaluation and progress intervals) and those GRPO, MGRPO
 * and PPO declare (GRPO's β and ε, PPO's clip range, MGRPO's guide phrases and H).
 */
export const LIVE_FIELDS: readonly string[] = [
  ...new Set(builtinAlgorithms().names().flatMap((n) => liveFieldsFor(n))),
];

/** A dotted config field that may change while a run is live (`learner.lr`). */
export type LiveField = string;

/**
 * The live fields of a run of `algorithm`: the shared ones ({@linkcode SHARED_LIVE_FIELDS})
 * and the ones its plug-in declares (`AlgorithmPlugin.liveFields`); a name the built-in
 * registry does not know gets the shared ones (pass its plug-in instead).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveFieldsFor } from "./run_control.ts";
 *
 * assert.ok(liveFieldsFor("mgrpo").includes("mgrpo.guide_phrases"));
 * assert.ok(!liveFieldsFor("ppo").includes("grpo.beta"));
 * assert.ok(liveFieldsFor("ppo").includes("ppo.cliprange"));
 * ```
 */
export function liveFieldsFor(algorithm: string | AlgorithmPlugin): LiveField[] {
  const registry = builtinAlgorithms();
  const plugin = typeof algorithm === "string"
    ? (registry.has(algorithm) ? registry.get(algorithm) : undefined)
    : algorithm;
  return [...SHARED_LIVE_FIELDS, ...(plugin?.liveFields ?? [])];
}

/** Load of one actor, as the runtime's `Graph.stats()` reports it. */
export interface ActorLoad {
  /** Total milliseconds the actor spent handling messages. */
  busyMs: number;
  /** Messages waiting in its mailbox. */
  queueDepth: number;
}

/** What `GET /status` returns: a snapshot of the run. */
export interface RunStatus {
  /** Where the run is. */
  state: RunState;
  /** Last completed step (the start step before the first one completes). */
  step: number;
  /** Step the run ends at (`run.steps`). */
  totalSteps: number;
  /** The `algorithm` of the config. */
  algorithm: string;
  /** Version of the policy the Sampler holds, as of the last step. */
  policyVersion: number;
  /** Load of every actor, as of the last step. */
  actors: Record<string, ActorLoad>;
  /** Whether a checkpoint request waits for the next step boundary. */
  checkpointPending: boolean;
  /** When the control was created (ISO 8601). */
  startedAt: string;
  /** When the last step completed (ISO 8601), `null` before the first. */
  lastStepAt: string | null;
  /** Why the run failed, `null` unless `state` is `failed`. */
  error: string | null;
}

/** An accepted request: it takes effect at the boundary after `effectiveAfterStep`. */
export interface RequestAccepted {
  /** Always `true`; refused requests throw {@linkcode RunStateError}. */
  accepted: true;
  /** The step after which the loop acts on the request. */
  effectiveAfterStep: number;
}

/** What the loop must do at a step boundary: save a checkpoint first, then maybe stop. */
export interface BoundaryAction {
  /** Leave the loop (a stop was requested, or the run already ended). */
  stop: boolean;
  /** Save a checkpoint of the last completed step (true once per request). */
  checkpoint: boolean;
}

/** One applied change of a live field. */
export interface ConfigChange {
  /** The dotted field, e.g. `"learner.lr"`. */
  field: LiveField;
  /** Its value before the patch. */
  old: unknown;
  /** Its value after the patch (as the section schema parsed it). */
  new: unknown;
}

/**
 * One prompt of the latest step with its completions, as `GET /samples` returns it: the
 * Learner's `StepStats.samples` entries ({@linkcode SampleGroup}: the prompt, each completion's
 * reward, trained advantage and verdict, and under MGRPO its guide phrase and H corrections).
 */
export type RunSample = SampleGroup;

/** What {@linkcode RunControl.subscribe} delivers (and `GET /events` streams). */
export type ControlEvent =
  | { type: "step"; step: number; metrics: Record<string, number> }
  | { type: "eval"; step: number; metrics: Record<string, number> }
  | { type: "state"; state: RunState; step: number }
  | { type: "config"; step: number; changes: ConfigChange[] };

/** One entry of {@linkcode RunControl.history}: a training step's or an evaluation's metrics. */
export interface HistoryEntry {
  /** `"step"` for a training step, `"eval"` for a held-out evaluation after `step`. */
  kind: "step" | "eval";
  /** The step (an evaluation's: the last completed step). */
  step: number;
  /** When it was recorded (ISO 8601). */
  time: string;
  /** Its metrics. */
  metrics: Record<string, number>;
}

/** One problem of a refused config patch: a zod issue whose path starts at the section. */
export type ConfigPatchIssue = z.core.$ZodIssue;

// --- errors ---

/**
 * A request the run's state refuses: resume when not paused, pause when stopping, any
 * request after the run ended (HTTP 409).
 */
export class RunStateError extends Error {
  /** The state that refused the request. */
  readonly state: RunState;

  /** `message` says what was refused; `state` is the current state. */
  constructor(message: string, state: RunState) {
    super(message);
    this.name = "RunStateError";
    this.state = state;
  }
}

/**
 * A refused config patch: `kind` `"not_live"` when it names fields outside the run's live
 * fields (HTTP 409), `"conflict"` when a valid value cannot apply to this run, e.g. β > 0
 * without a reference policy (HTTP 409), `"invalid"` when it is malformed or a value fails
 * the section schema (HTTP 400). Nothing was changed.
 */
export class ConfigPatchError extends Error {
  /** Why the patch was refused. */
  readonly kind: "not_live" | "conflict" | "invalid";
  /** The zod issues, paths from the section (`["learner", "lr"]`); empty unless `invalid`. */
  readonly issues: readonly ConfigPatchIssue[];
  /** The fields that may change in this run. */
  readonly liveFields: readonly LiveField[];

  /** `issues` are the zod issues of an `"invalid"` patch. */
  constructor(
    message: string,
    kind: "not_live" | "conflict" | "invalid",
    issues: readonly ConfigPatchIssue[] = [],
    liveFields: readonly LiveField[] = LIVE_FIELDS,
  ) {
    super(message);
    this.name = "ConfigPatchError";
    this.kind = kind;
    this.issues = issues;
    this.liveFields = liveFields;
  }
}

// --- live fields and their schemas ---

/** The built-in config's section schemas, by section name. */
const BUILTIN_SECTIONS: Record<string, z.ZodType> = liveSectionSchemas(
  builtinAlgorithms().sections(),
);

function splitField(field: LiveField): [string, string] {
  const dot = field.indexOf(".");
  return [field.slice(0, dot), field.slice(dot + 1)];
}

/** A live field's schema without its default (absent means unchanged), keeping its text. */
function liveFieldSchema(field: LiveField, sections: Record<string, z.ZodType>): z.ZodType {
  const [section, key] = splitField(field);
  const shape: Record<string, z.ZodType> = (sections[section] as z.ZodObject).shape;
  let schema = shape[key]!;
  const description = schema.description;
  if (schema instanceof z.ZodDefault) schema = schema.unwrap() as z.ZodType;
  return description === undefined ? schema : schema.describe(description);
}

/**
 * The body of `PATCH /config` as a zod schema (for documentation and clients): either
 * nested sections (`{ "learner": { "lr": 1e-4 } }`) or flat dotted keys
 * (`{ "learner.lr": 1e-4 }`), every field optional. {@linkcode RunControl.patchConfig}
 * validates against the full section schemas, so cross-field rules apply too.
 */
export const ConfigPatchSchema: z.ZodType = configPatchSchema(LIVE_FIELDS);

/**
 * {@linkcode ConfigPatchSchema} over `fields` only (a run's live fields), whose sections'
 * schemas are `sections` (a plug-in's included).
 */
export function configPatchSchema(
  fields: readonly LiveField[],
  sections: Record<string, z.ZodType> = BUILTIN_SECTIONS,
): z.ZodType {
  const nested: Record<string, Record<string, z.ZodType>> = {};
  const flat: Record<string, z.ZodType> = {};
  for (const field of fields) {
    const [section, key] = splitField(field);
    (nested[section] ??= {})[key] = liveFieldSchema(field, sections).optional();
    flat[field] = liveFieldSchema(field, sections).optional();
  }
  const objects: Record<string, z.ZodType> = {};
  for (const [section, shape] of Object.entries(nested)) {
    objects[section] = z.object(shape).strict().optional();
  }
  return z.union([
    z.object(objects).strict().describe("Nested sections: { learner: { lr: 0.0001 } }"),
    z.object(flat).strict().describe('Flat dotted fields: { "learner.lr": 0.0001 }'),
  ]).describe(`Live config fields to change: ${fields.join(", ")}`);
}

// --- the control ---

/** Options for {@linkcode RunControl}. */
export interface RunControlOptions {
  /**
   * Step the run starts after (a resumed run's checkpoint step).
   * @default 0
   */
  startStep?: number;
  /**
   * Step the run ends at.
   * @default config.run.steps
   */
  totalSteps?: number;
  /**
   * Policy version before the first step.
   * @default 0
   */
  policyVersion?: number;
  /**
   * File that gets one JSON line `{time, step, field, old, new}` per applied config change
   * (appended); undefined records none.
   * @default undefined
   */
  eventsPath?: string;
  /**
   * Sample groups (prompts) of the latest step kept for `GET /samples`: the first this many.
   * @default 32
   */
  maxSamples?: number;
  /**
   * The fields `PATCH /config` may change.
   * @default liveFieldsFor(config.algorithm)
   */
  liveFields?: readonly LiveField[];
  /**
   * The config sections' schemas a patch is validated with, by section (a plug-in's section
   * included): `liveSectionSchemas()` of the run's registry.
   * @default the built-in algorithms' and the shared sections
   */
  sectionSchemas?: Record<string, z.ZodType>;
  /**
   * Refuses a valid patch this run cannot apply (a `"conflict"`, HTTP 409): gets the config
   * the patch would make and returns why not, or `undefined` to accept it.
   * @default undefined
   */
  checkPatch?: (next: TrainConfig, changes: readonly ConfigChange[]) => string | undefined;
  /**
   * Entries kept for `GET /history` (the most recent ones; a dashboard opened late draws
   * its charts from them).
   * @default 10000
   */
  maxHistory?: number;
  /**
   * Clock for `startedAt`, `lastStepAt` and event times.
   * @default () => new Date()
   */
  now?: () => Date;
}

/** Options for {@linkcode RunControl.recordStep}. */
export interface RecordStepOptions {
  /** Load of every actor (`graph.stats()`; only `busyMs` and `queueDepth` are kept). */
  actors?: Readonly<Record<string, ActorLoad>>;
  /** Version of the policy after the step. */
  policyVersion?: number;
}

/**
 * The live state of one training run: status, requests that take effect between steps,
 * live config changes and the event feed behind `GET /events`.
 *
 * @example A loop that pauses, resumes and stops
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainConfigSchema } from "../algorithms/builtins.ts";
 * import { RunControl } from "./run_control.ts";
 *
 * const control = new RunControl(TrainConfigSchema.parse({ run: { steps: 10 } }));
 * assert.deepEqual(await control.atStepBoundary(), { stop: false, checkpoint: false });
 * control.recordStep(1, { "reward/mean": 0.5 });
 * assert.deepEqual(control.requestStop(), { accepted: true, effectiveAfterStep: 1 });
 * assert.deepEqual(await control.atStepBoundary(), { stop: true, checkpoint: false });
 * control.markStopped();
 * assert.equal(control.status().state, "stopped");
 * ```
 */
export class RunControl {
  #config: TrainConfig;
  #state: RunState = "starting";
  #step: number;
  #inStep = false;
  #totalSteps: number;
  #policyVersion: number;
  #actors: Record<string, ActorLoad> = {};
  #metrics: Record<string, number> = {};
  #samples: RunSample[] = [];
  #maxSamples: number;
  #history: HistoryEntry[] = [];
  #maxHistory: number;
  #checkpointPending = false;
  #error: string | null = null;
  #startedAt: Date;
  #lastStepAt: Date | null = null;
  #eventsPath: string | undefined;
  #liveFields: readonly LiveField[];
  #sectionSchemas: Record<string, z.ZodType>;
  #checkPatch: RunControlOptions["checkPatch"];
  #now: () => Date;
  #wake: PromiseWithResolvers<void> | undefined;
  #subscribers = new Set<(event: ControlEvent) => void>();
  #configListeners = new Set<(changes: ConfigChange[]) => void>();
  #patching: Promise<unknown> = Promise.resolve();

  /** Holds `config` (the validated config the run started with) in state `starting`. */
  constructor(config: TrainConfig, options: RunControlOptions = {}) {
    this.#config = config;
    this.#step = options.startStep ?? 0;
    this.#totalSteps = options.totalSteps ?? config.run.steps;
    this.#policyVersion = options.policyVersion ?? 0;
    this.#maxSamples = options.maxSamples ?? 32;
    if (!Number.isInteger(this.#maxSamples) || this.#maxSamples < 0) {
      throw new RangeError(
        `Cannot create run control: maxSamples must be an integer >= 0: current value is ${this.#maxSamples}`,
      );
    }
    this.#maxHistory = options.maxHistory ?? 10000;
    if (!Number.isInteger(this.#maxHistory) || this.#maxHistory < 0) {
      throw new RangeError(
        `Cannot create run control: maxHistory must be an integer >= 0: current value is ${this.#maxHistory}`,
      );
    }
    this.#eventsPath = options.eventsPath;
    this.#liveFields = options.liveFields ?? liveFieldsFor(config.algorithm);
    this.#sectionSchemas = options.sectionSchemas ?? BUILTIN_SECTIONS;
    this.#checkPatch = options.checkPatch;
    this.#now = options.now ?? (() => new Date());
    this.#startedAt = this.#now();
  }

  /** The config as of the last applied patch (a new object after every patch; do not mutate). */
  get config(): TrainConfig {
    return this.#config;
  }

  /** The fields `PATCH /config` may change in this run. */
  get liveFields(): readonly LiveField[] {
    return this.#liveFields;
  }

  /** The section schemas patches are validated with. */
  get sectionSchemas(): Record<string, z.ZodType> {
    return this.#sectionSchemas;
  }

  /** Where the run is. */
  get state(): RunState {
    return this.#state;
  }

  /** A snapshot of the run for `GET /status`. */
  status(): RunStatus {
    const actors: Record<string, ActorLoad> = {};
    for (const [name, load] of Object.entries(this.#actors)) actors[name] = { ...load };
    return {
      state: this.#state,
      step: this.#step,
      totalSteps: this.#totalSteps,
      algorithm: this.#config.algorithm,
      policyVersion: this.#policyVersion,
      actors,
      checkpointPending: this.#checkpointPending,
      startedAt: this.#startedAt.toISOString(),
      lastStepAt: this.#lastStepAt?.toISOString() ?? null,
      error: this.#error,
    };
  }

  /** The metrics of the last completed step (`{}` before the first). */
  latestMetrics(): Record<string, number> {
    return { ...this.#metrics };
  }

  /** The latest step's sample groups, one per prompt (`[]` before the first step). */
  samples(): RunSample[] {
    return [...this.#samples];
  }

  /** The recorded steps and evaluations, oldest first (at most `maxHistory`). */
  history(): HistoryEntry[] {
    return this.#history.map((e) => ({ ...e, metrics: { ...e.metrics } }));
  }

  // --- fed by the training loop ---

  /**
   * Records a completed step: its metrics, the actors' load and the policy version; sends a
   * `step` event. Call it once per step, after the step's metrics are known.
   */
  recordStep(step: number, metrics: Record<string, number>, options: RecordStepOptions = {}): void {
    this.#step = step;
    this.#inStep = false;
    this.#metrics = { ...metrics };
    this.#lastStepAt = this.#now();
    if (options.actors) {
      this.#actors = {};
      for (const [name, load] of Object.entries(options.actors)) {
        this.#actors[name] = { busyMs: load.busyMs, queueDepth: load.queueDepth };
      }
    }
    if (options.policyVersion !== undefined) this.#policyVersion = options.policyVersion;
    this.#remember("step", step, metrics);
    this.#emit({ type: "step", step, metrics: { ...metrics } });
  }

  /**
   * Records a held-out evaluation of the policy after `step` (e.g. `eval/accuracy`, which is
   * Acc@t2 for MGRPO); sends an `eval` event.
   */
  recordEval(step: number, metrics: Record<string, number>): void {
    this.#remember("eval", step, metrics);
    this.#emit({ type: "eval", step, metrics: { ...metrics } });
  }

  #remember(kind: "step" | "eval", step: number, metrics: Record<string, number>): void {
    if (this.#maxHistory === 0) return;
    this.#history.push({ kind, step, time: this.#now().toISOString(), metrics: { ...metrics } });
    if (this.#history.length > this.#maxHistory) this.#history.shift();
  }

  /**
   * Keeps a step's sample groups for `GET /samples` (the first `maxSamples`), in place of the
   * previous step's.
   */
  recordSamples(samples: readonly RunSample[]): void {
    this.#samples = samples.slice(0, this.#maxSamples);
  }

  /**
   * Called by the loop before every step (and so after the last completed one). Resolves at
   * once while running; while paused waits until a resume or a stop. The first call moves
   * `starting` to `running`. Save a checkpoint when `checkpoint` is true, then leave the loop
   * when `stop` is (and call {@linkcode markStopped} once the run has wound down).
   *
   * A checkpoint asked for while paused is reported when the run resumes or stops.
   */
  async atStepBoundary(): Promise<BoundaryAction> {
    this.#inStep = false;
    if (this.#state === "starting") this.#setState("running");
    if (this.#state === "pausing") this.#setState("paused");
    while (this.#state === "paused") {
      this.#wake ??= Promise.withResolvers<void>();
      await this.#wake.promise;
    }
    const checkpoint = this.#checkpointPending;
    this.#checkpointPending = false;
    const stop = this.#state !== "running";
    this.#inStep = !stop;
    return { stop, checkpoint };
  }

  /** Marks the run as ended normally (after its last step or a stop); wakes a paused loop. */
  markStopped(): void {
    if (this.#state === "stopped" || this.#state === "failed") return;
    this.#checkpointPending = false;
    this.#setState("stopped");
  }

  /** Marks the run as failed with `error`'s message; wakes a paused loop. */
  markFailed(error: unknown): void {
    if (this.#state === "stopped" || this.#state === "failed") return;
    this.#error = error instanceof Error ? error.message : String(error);
    this.#checkpointPending = false;
    this.#setState("failed");
  }

  // --- requests ---

  /**
   * Asks the loop to pause at the next step boundary.
   * @throws {RunStateError} unless the run is `starting` or `running`
   */
  requestPause(): RequestAccepted {
    if (this.#state !== "starting" && this.#state !== "running") {
      throw new RunStateError(
        `Cannot pause the run: it is not running: current state is "${this.#state}"`,
        this.#state,
      );
    }
    this.#setState("pausing");
    return this.#accepted();
  }

  /**
   * Lets a paused run go on (or cancels a pause that has not taken effect yet).
   * @throws {RunStateError} unless the run is `paused` or `pausing`
   */
  requestResume(): RequestAccepted {
    if (this.#state !== "paused" && this.#state !== "pausing") {
      throw new RunStateError(
        `Cannot resume the run: it is not paused: current state is "${this.#state}"`,
        this.#state,
      );
    }
    this.#setState("running");
    return this.#accepted();
  }

  /**
   * Asks the loop to stop at the next step boundary (a paused run stops at once).
   * @throws {RunStateError} when the run is already stopping or has ended
   */
  requestStop(): RequestAccepted {
    if (this.#state === "stopping" || this.#state === "stopped" || this.#state === "failed") {
      throw new RunStateError(
        `Cannot stop the run: it is already ${
          this.#state === "stopping" ? "stopping" : "over"
        }: current state is "${this.#state}"`,
        this.#state,
      );
    }
    this.#setState("stopping");
    return this.#accepted();
  }

  /**
   * Asks the loop to save a checkpoint at the next step boundary; a second request before
   * then is the same request.
   * @throws {RunStateError} when the run has ended
   */
  requestCheckpoint(): RequestAccepted {
    if (this.#state === "stopped" || this.#state === "failed") {
      throw new RunStateError(
        `Cannot checkpoint the run: it is over: current state is "${this.#state}"`,
        this.#state,
      );
    }
    this.#checkpointPending = true;
    return this.#accepted();
  }

  // --- live config ---

  /**
   * Calls `listener` with the changes of every applied patch (the loop passes them on to the
   * actors). Returns a function that removes it.
   */
  onConfigChange(listener: (changes: ConfigChange[]) => void): () => void {
    this.#configListeners.add(listener);
    return () => this.#configListeners.delete(listener);
  }

  /**
   * Changes live config fields, all or nothing. `patch` is nested
   * (`{ learner: { lr: 1e-4 } }`) or flat (`{ "learner.lr": 1e-4 }`), or both. Each touched
   * section is re-validated with its schema from `config/schema.ts`. An accepted patch
   * replaces the held config, appends one line per change to the events file, sends a
   * `config` event and calls the {@linkcode onConfigChange} listeners. A field set to its
   * current value is not a change. Patches are applied one at a time, in call order.
   *
   * @returns the applied changes
   * @throws {ConfigPatchError} `not_live` for fields outside the run's live fields,
   * `invalid` for a malformed patch or values the schema refuses
   */
  patchConfig(patch: unknown): Promise<ConfigChange[]> {
    const result = this.#patching.then(() => this.#applyPatch(patch));
    this.#patching = result.catch(() => {});
    return result;
  }

  async #applyPatch(patch: unknown): Promise<ConfigChange[]> {
    const values = flattenPatch(patch, this.#liveFields);
    const candidates = new Map<string, Record<string, unknown>>();
    for (const [field, value] of values) {
      const [section, key] = splitField(field);
      let candidate = candidates.get(section);
      if (!candidate) {
        candidate = { ...((this.#config as Record<string, unknown>)[section] as object) };
        candidates.set(section, candidate);
      }
      candidate[key] = value;
    }
    const parsed = new Map<string, Record<string, unknown>>();
    const issues: ConfigPatchIssue[] = [];
    const messages: string[] = [];
    for (const [section, candidate] of candidates) {
      const result = this.#sectionSchemas[section]!.safeParse(candidate);
      if (result.success) {
        parsed.set(section, result.data as Record<string, unknown>);
        continue;
      }
      for (const issue of result.error.issues) {
        const path = [section, ...issue.path];
        issues.push({ ...issue, path } as ConfigPatchIssue);
        messages.push(
          describeConfigIssue(issue, path.map(String), valueAt(candidate, issue.path)),
        );
      }
    }
    if (issues.length > 0) {
      throw new ConfigPatchError(
        `Cannot change config: ${messages.join("\n  ")}`,
        "invalid",
        issues,
      );
    }
    const changes: ConfigChange[] = [];
    for (const [field] of values) {
      const [section, key] = splitField(field);
      const old =
        ((this.#config as Record<string, unknown>)[section] as Record<string, unknown>)[key];
      const next = parsed.get(section)![key];
      if (JSON.stringify(old) !== JSON.stringify(next)) changes.push({ field, old, new: next });
    }
    if (changes.length === 0) return changes;
    const next = { ...this.#config };
    for (const [section, data] of parsed) (next as Record<string, unknown>)[section] = data;
    const conflict = this.#checkPatch?.(next, changes);
    if (conflict !== undefined) {
      throw new ConfigPatchError(
        `Cannot change config: ${conflict}`,
        "conflict",
        [],
        this.#liveFields,
      );
    }
    if (this.#eventsPath !== undefined) {
      const time = this.#now().toISOString();
      const lines = changes.map((c) =>
        JSON.stringify({ time, step: this.#step, field: c.field, old: c.old, new: c.new }) + "\n"
      );
      await Deno.writeTextFile(this.#eventsPath, lines.join(""), { append: true });
    }
    this.#config = next;
    this.#emit({ type: "config", step: this.#step, changes });
    for (const listener of [...this.#configListeners]) listener(changes);
    return changes;
  }

  // --- events ---

  /**
   * Calls `listener` with every `step`, `state` and `config` event from now on. Returns a
   * function that removes it. Listeners run synchronously inside the loop's calls: keep them
   * short and do not throw.
   */
  subscribe(listener: (event: ControlEvent) => void): () => void {
    this.#subscribers.add(listener);
    return () => this.#subscribers.delete(listener);
  }

  /** How many listeners {@linkcode subscribe} holds (one per open `GET /events` stream). */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  #emit(event: ControlEvent): void {
    for (const listener of [...this.#subscribers]) listener(event);
  }

  #setState(state: RunState): void {
    if (state === this.#state) return;
    this.#state = state;
    if (state !== "paused" && this.#wake) {
      this.#wake.resolve();
      this.#wake = undefined;
    }
    this.#emit({ type: "state", state, step: this.#step });
  }

  #accepted(): RequestAccepted {
    return { accepted: true, effectiveAfterStep: this.#inStep ? this.#step + 1 : this.#step };
  }
}

// --- patches ---

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Turns a nested and/or flat patch into `[field, value]` pairs. A key path stops at a live
 * field (its value is taken whole, objects included) or at a value that is not an object.
 */
function flattenPatch(patch: unknown, liveFields: readonly LiveField[]): [LiveField, unknown][] {
  if (!isPlainObject(patch)) {
    throw new ConfigPatchError(
      `Cannot change config: the patch must be a JSON object: current value is ${
        formatValue(patch)
      }`,
      "invalid",
    );
  }
  const pairs: [string, unknown][] = [];
  // Depth first with an explicit stack, not recursion: a body nested thousands deep
  // (`{"a":{"a":…}}`) must be refused, not overflow the call stack.
  const stack: [string, Iterator<[string, unknown]>][] = [["", Object.entries(patch).values()]];
  while (stack.length > 0) {
    const [prefix, entries] = stack.at(-1)!;
    const next = entries.next();
    if (next.done) {
      stack.pop();
      continue;
    }
    const [key, value] = next.value;
    const field = prefix ? `${prefix}.${key}` : key;
    if (!liveFields.includes(field) && isPlainObject(value)) {
      stack.push([field, Object.entries(value).values()]);
    } else {
      pairs.push([field, value]);
    }
  }
  const notLive = pairs.map(([field]) => field).filter((field) =>
    !(liveFields as readonly string[]).includes(field)
  );
  if (notLive.length > 0) {
    const names = notLive.map((f) => `"${f}"`).join(", ");
    throw new ConfigPatchError(
      `Cannot change config: ${
        notLive.length === 1 ? "field" : "fields"
      } ${names} cannot change during this run: live fields are ${
        liveFields.map((f) => `"${f}"`).join(", ")
      }`,
      "not_live",
      [],
      liveFields,
    );
  }
  if (pairs.length === 0) {
    throw new ConfigPatchError(
      "Cannot change config: the patch names no field: current value is {}",
      "invalid",
    );
  }
  const seen = new Set<string>();
  for (const [field] of pairs) {
    if (seen.has(field)) {
      throw new ConfigPatchError(
        `Cannot change config: field "${field}" is given twice (nested and flat)`,
        "invalid",
      );
    }
    seen.add(field);
  }
  return pairs as [LiveField, unknown][];
}

// --- messages ---

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const part of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

// --- token ---

/**
 * A fresh bearer token for the control server: 32 random bytes from
 * `crypto.getRandomValues`, as 64 lower-case hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateToken } from "./run_control.ts";
 *
 * assert.match(generateToken(), /^[0-9a-f]{64}$/);
 * ```
 */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes `token` (and a newline) to `path`, readable and writable by the owner only
 * (mode 0600, also when the file existed with looser permissions). The mode is not set on
 * Windows, which has no such bits.
 */
export async function writeTokenFile(path: string, token: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
    const bytes = new TextEncoder().encode(`${token}\n`);
    for (let written = 0; written < bytes.length;) {
      written += await file.write(bytes.subarray(written));
    }
  } finally {
    file.close();
  }
}
