/**
 * The training driver as a library: a {@linkcode Trainer} sets a run up from a validated config
 * (`setupRun`), builds the algorithm's actor graph (`buildGraphInput`), and runs it step by step
 * with a held-out evaluation before and after (for MGRPO with one guided correction of each
 * answer, `eval.correction`), `metrics.jsonl`, `samples.jsonl` (each step's
 * prompts with their completions, rewards and advantages), checkpoints with every
 * stateful actor's snapshot, and the live control loop (HTTP server or local). `deno task train`
 * is this plus argument parsing, signals and a progress line.
 *
 * @example Two steps of GRPO from TypeScript
 * ```ts ignore
 * import { loadConfig, Trainer } from "../mod.ts";
 *
 * const config = loadConfig("configs/smoke-grpo.yaml", { overrides: ["run.steps=2"] });
 * const trainer = await Trainer.create(config, { runDir: "runs/from-script" });
 * const summary = await trainer.run();
 * console.log(summary.accuracy_before, summary.accuracy_after, summary.checkpoint);
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import { runEnvironment } from "./environment.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import type { AlgorithmRegistry } from "../algorithms/registry.ts";
import type {
  ActorSnapshot,
  ActorState,
  CheckpointSaved,
  Configure,
  Query,
  Scored,
  StepStats,
} from "../actors/messages.ts";
import { ActorFailedError, type Graph, type Placement } from "../actors/runtime/mod.ts";
import {
  LocalLoopControl,
  type LoopControl,
  type LoopControlOptions,
  startControlServer,
} from "../server/serve.ts";
import { deriveConfig } from "./config.ts";
import {
  disposePolicy,
  type ResumePoint,
  type RunSetup,
  setupGraphInput,
  setupRun,
} from "./graph_input.ts";
import { liveConfigValues, pruneCheckpoints } from "./resume.ts";
import { placeActors } from "./placement.ts";
import { liveFieldsFor } from "../server/run_control.ts";
import { type EvalSplit, liveSectionSchemas } from "../config/schema.ts";
import { formatTable } from "../util/table.ts";
import { releaseWasmThreads } from "../model/wasm_threads.ts";
import { datedRunDir } from "./run_dir.ts";
import { TensorBoardWriter } from "./tensorboard.ts";
import { sampleLine, SAMPLES_FILE, truncateSamples } from "./samples_file.ts";
import { correctionEnabled, correctionQueries } from "./evaluate.ts";
import { type CorrectionMetrics, correctionMetrics } from "../algorithms/mgrpo/self_correction.ts";

/** How the evaluation lines name each split. */
const SPLIT_NAMES: Readonly<Record<EvalSplit, string>> = {
  heldout: "held-out",
  dev: "dev",
  dev_unseen: "unseen dev",
};

/** Options of {@linkcode Trainer.create}. */
export interface TrainerOptions {
  /**
   * The run folder. A new run refuses a folder that is not empty unless `overwrite`. Left out,
   * a fresh dated folder `<run.dir>/<run.name>-<YYYYMMDD-HHMMSS>`, with `<run.dir>/<run.name>`
   * a link to it (`training/run_dir.ts`).
   * @default a dated folder
   */
  readonly runDir?: string;
  /** Move a non-empty `runDir` aside (`<dir>.replaced-<time>`) instead of refusing it. */
  readonly overwrite?: boolean;
  /** The registry `config.algorithm` is looked up in (plug-ins). @default the built-ins */
  readonly registry?: AlgorithmRegistry;
  /** The checkpoint a resumed run continues from (`resumePoint()`). @default a new run */
  readonly resume?: ResumePoint;
  /**
   * How a host of an actor placed apart rebuilds this config: its file and `--set` overrides
   * (with `resume`, the run folder's `config.yaml` is read instead).
   * @default the embedded default, no overrides
   */
  readonly configPath?: string;
  /** See {@linkcode TrainerOptions.configPath}. @default [] */
  readonly overrides?: readonly string[];
  /** Where progress lines go. @default console.log */
  readonly log?: (line: string) => void;
  /** Where warnings go. @default console.error */
  readonly warn?: (line: string) => void;
  /** Called after every step with its metrics (a progress line). @default nothing */
  readonly onStep?: (step: number, metrics: Record<string, number>, seconds: number) => void;
  /**
   * Called at every step boundary before the control loop is asked what to do (a CLI reads
   * its signals there).
   * @default nothing
   */
  readonly onStepBoundary?: () => void;
  /** Called once the loop ends, before the final checkpoint (a progress line ends). */
  readonly onLoopEnd?: () => void;
  /**
   * Called after each evaluation of `eval.before`, `eval.every` and `eval.after` with its
   * result (per problem with `eval.correction`).
   * @default nothing
   */
  readonly onEval?: (
    label: "before" | "during" | "after",
    step: number,
    result: EvalResult,
  ) => void;
}

/**
 * One guided correction of each first answer in a held-out evaluation (`eval.correction`):
 * the paired metrics of the first answers (t1) and the corrected ones (t2), as
 * `deno task eval --two-turn --rounds 1` reports them.
 */
export interface EvalCorrection extends CorrectionMetrics {
  /** Correction prompts rejected by `prompts.on_long_prompt` (scored wrong at t2). */
  readonly overflow: number;
  /** Correction prompts cut to their last `prompts.max_prompt_tokens` tokens. */
  readonly truncated: number;
  /** Seconds the correction took (its prompts, generation and scoring). */
  readonly seconds: number;
  /** Per problem (the evaluation set's order): the first answer is right. */
  readonly t1: readonly boolean[];
  /** Per problem: the answer after one guided correction is right. */
  readonly t2: readonly boolean[];
}

/** One held-out evaluation of the Sampler's policy. */
export interface EvalResult {
  /** Acc@t1: share of first answers that are right. */
  readonly accuracy: number;
  /** Share of completions with a closed `<think>` block. */
  readonly formatted: number;
  /** Mean completion length in tokens. */
  readonly meanLength: number;
  /** Seconds of the first answers (without the correction). */
  readonly seconds: number;
  /** One guided correction of each answer, when `eval.correction` is on for the run. */
  readonly correction?: EvalCorrection;
}

/** What a run wrote to `summary.json`. */
export interface TrainSummary {
  steps: number;
  seconds: number;
  seed: number;
  accuracy_before: number | null;
  accuracy_after: number | null;
  sampled_tokens: number;
  checkpoint: string;
  data: { bad_lines: number; rejected_prompts: number; truncated_prompts: number };
}

/**
 * A training run in this process. Create it with {@linkcode Trainer.create}, call
 * {@linkcode Trainer.run} once; {@linkcode Trainer.evaluate} and {@linkcode Trainer.checkpoint}
 * may be called while its graph runs (before `run`, they start it).
 */
export class Trainer {
  /** The run's config (a Hugging Face model's chat template filled in). */
  readonly config: TrainConfig & Record<string, unknown>;
  /** The fields that may change while the run is live: the shared ones and its algorithm's. */
  readonly liveFields: readonly string[];
  /** The run folder. */
  readonly runDir: string;
  /** The live control loop (HTTP server when `control.enabled`). */
  readonly control: LoopControl;
  readonly #setup: RunSetup;
  readonly #graph: Graph;
  readonly #options: TrainerOptions;
  readonly #log: (line: string) => void;
  readonly #warn: (line: string) => void;
  #failure: ActorFailedError | undefined;
  #metrics: Deno.FsFile;
  #samples: Deno.FsFile;
  #board: TensorBoardWriter | undefined;
  #started = false;
  #closed = false;
  #live: TrainConfig & Record<string, unknown>;
  #sampledTokens: number;
  #lastCheckpoint = { step: -1, path: "" };
  #lastSnapshots: Record<string, ActorState> = {};
  #table: (string | number)[][] = [];
  /** Whether evaluations add one guided correction (`eval.correction`). */
  readonly #correction: boolean;

  private constructor(
    setup: RunSetup,
    runDir: string,
    control: LoopControl,
    files: { metrics: Deno.FsFile; samples: Deno.FsFile },
    placement: Record<string, Placement>,
    options: TrainerOptions,
    correction: boolean,
  ) {
    this.#setup = setup;
    this.config = setup.config;
    this.liveFields = liveFieldsFor(setup.plugin);
    this.#live = setup.config;
    this.runDir = runDir;
    this.control = control;
    this.#metrics = files.metrics;
    this.#samples = files.samples;
    this.#options = options;
    this.#log = options.log ?? ((line) => console.log(line));
    this.#warn = options.warn ?? ((line) => console.error(line));
    this.#sampledTokens = setup.resume ? Number(setup.resume.saved.sampled_tokens ?? 0) : 0;
    this.#correction = correction;
    this.#graph = setup.plugin.buildGraph(
      setupGraphInput(setup, {
        runDir,
        onFailure: (report) => {
          this.#failure = new ActorFailedError(report.actor, report.message, report.cause);
        },
        placement,
      }),
    );
  }

  /**
   * Sets a run up: loads the policy and the task, writes `config.yaml`, builds the graph and
   * starts the control server (its URL and token are printed and written to the run folder).
   *
   * @throws {ConfigError} For a placement the run cannot honour.
   * @throws {Error} When the dataset, a reward module or a resumed checkpoint is unusable.
   */
  static async create(
    config: TrainConfig & Record<string, unknown>,
    options: TrainerOptions = {},
  ): Promise<Trainer> {
    const named = deriveConfig(config).runDir;
    const runDir = options.runDir ?? (options.resume ? named : await datedRunDir(named));
    const log = options.log ?? ((line: string) => console.log(line));
    const warn = options.warn ?? ((line: string) => console.error(line));
    const setup = await setupRun(config, {
      runDir,
      claim: {
        overwrite: options.overwrite ?? false,
        ...(options.runDir === undefined ? { link: named } : {}),
      },
      ...(options.registry ? { registry: options.registry } : {}),
      ...(options.resume ? { resume: options.resume } : {}),
      ...(options.configPath ? { configPath: options.configPath } : {}),
      log,
      warn,
    });
    // A resumed run logs the steps after its checkpoint again: their old lines go, as
    // metrics.jsonl's do.
    if (setup.resume) await truncateSamples(runDir, setup.policy.startStep);
    const append = { create: true, append: true, write: true };
    const metrics = await Deno.open(`${runDir}/metrics.jsonl`, append);
    const samples = await Deno.open(`${runDir}/${SAMPLES_FILE}`, append);
    let control: LoopControl | undefined;
    try {
      // Actors placed in a Worker or on NATS (`placement:`): proxies that forward to them.
      const placement = placeActors(setup.config, {
        configPath: options.configPath,
        overrides: options.overrides ?? [],
        ...(setup.resume ? { resume: dirname(setup.resume.checkpoint) } : {}),
      });
      // A forced `eval.correction` without the mgrpo section fails here, before anything runs.
      const correction = correctionEnabled(setup.config, setup.plugin, options.configPath);
      control = await startControl(setup, runDir, log, warn);
      return new Trainer(
        setup,
        runDir,
        control,
        { metrics, samples },
        placement,
        options,
        correction,
      );
    } catch (e) {
      await control?.close();
      metrics.close();
      samples.close();
      await setup.scorer.close();
      disposePolicy(setup.policy);
      throw e;
    }
  }

  /** The step the run starts after (0, or the resumed checkpoint's). */
  get startStep(): number {
    return this.#setup.policy.startStep;
  }

  /** Asks the loop to stop after the step in progress (it checkpoints and evaluates). */
  requestStop(): void {
    this.control.requestStop();
  }

  /** Starts the graph and sends the resumed actors their snapshots (once). */
  async #start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.config.run.report_to.includes("tensorboard")) {
      // Its START drops what earlier files logged after the step it starts from (a resumed
      // run's checkpoint). A new run writes one too: TensorBoard's server takes a run's first
      // START for its beginning and purges only at later ones.
      this.#board ??= await TensorBoardWriter.create(`${this.runDir}/tb`, {
        purgeStep: this.startStep + 1,
      });
    }
    await this.#graph.start();
    const present = this.#graph.stats();
    for (const [name, message] of this.#setup.restores) {
      if (!(name in present)) {
        throw new Error(
          `Cannot resume from "${this.#setup.resume?.checkpoint}": it holds a snapshot of actor ` +
            `"${name}", which the ${this.config.algorithm} graph does not have`,
        );
      }
      await this.#graph.send(name, message);
    }
  }

  /**
   * Evaluates the Sampler's policy on the held-out set (greedy unless `eval.greedy: false`),
   * routed through the graph. With `eval.correction` on (MGRPO by default) the Sampler then
   * continues each answer's Layer-2 query (one guided correction, the query and guide phrase
   * of `deno task eval --two-turn --rounds 1`), scored on its continuation alone.
   */
  async evaluate(label = "eval"): Promise<EvalResult> {
    await this.#start();
    const t0 = performance.now();
    const problems = this.#setup.evalSet;
    const scored = await this.#generateEval(label, this.#setup.evalQueries);
    const n = Math.max(1, scored.verdicts.length);
    const first = {
      accuracy: scored.verdicts.filter((v) => v.correct).length / n,
      formatted:
        scored.verdicts.filter((v) =>
          v.reason !== "no </think> tag" && v.reason !== "unclosed <think>"
        ).length / n,
      meanLength: scored.rollouts.reduce((a, r) => a + r.completionIds.length, 0) / n,
      seconds: (performance.now() - t0) / 1000,
    };
    if (!this.#correction || problems.length === 0) return first;
    return { ...first, correction: await this.#evaluateCorrection(label, scored) };
  }

  /**
   * One `Evaluate` through the graph, each completion up to `maxNewTokens` new tokens: the eval
   * sink's scored rollouts, one per query.
   */
  async #generateEval(
    label: string,
    queries: Query[],
    maxNewTokens = this.#live.eval.max_new_tokens,
  ): Promise<Scored> {
    const config = this.#live;
    await this.#graph.send("prompt_source", {
      type: "Evaluate",
      label,
      queries,
      batchSize: config.eval.batch_size,
      params: {
        maxNewTokens,
        temperature: config.eval.temperature,
        topP: 1,
        topK: 0,
        greedy: config.eval.greedy,
      },
    });
    return await this.#graph.sink<Scored>("eval").receive();
  }

  /**
   * One guided correction of each first answer in `scored` (in problem order): the Layer-2
   * queries of `correctionQueries`, a second `Evaluate` with them, and the paired metrics of
   * t1 and t2. A rejected prompt scores as wrong at t2.
   */
  async #evaluateCorrection(label: string, scored: Scored): Promise<EvalCorrection> {
    const t0 = performance.now();
    const problems = this.#setup.evalSet;
    const { tokenizer, model } = this.#setup.policy;
    const firstAnswers = problems.map(() => "");
    const t1 = problems.map(() => false);
    scored.rollouts.forEach((r, k) => {
      firstAnswers[r.queryIndex] = r.text;
      t1[r.queryIndex] = scored.verdicts[k]!.correct;
    });
    const built = correctionQueries(this.#live, problems, {
      firstAnswers,
      tokenizer,
      contextLength: model.config.max_position_embeddings,
    });
    const t2 = problems.map(() => false);
    if (built.queries.length > 0) {
      const corrected = await this.#generateEval(
        `${label}/correction`,
        built.queries,
        this.#live.mgrpo.layer2_max_new_tokens ?? this.#live.eval.max_new_tokens,
      );
      corrected.rollouts.forEach((r, k) => {
        t2[built.problemIndex[r.queryIndex]!] = corrected.verdicts[k]!.correct;
      });
    }
    return {
      ...correctionMetrics(t1, t2),
      overflow: built.overflow,
      truncated: built.truncated,
      seconds: (performance.now() - t0) / 1000,
      t1,
      t2,
    };
  }

  /**
   * Writes `checkpoint-<step>` at a step boundary: every stateful actor's snapshot first (all
   * actors are idle between steps, so they describe the same step), then the Learner writes
   * them with the policy under one manifest; old ones beyond `run.keep_last` go. Resolves to
   * its path (the same one when called twice at a step).
   */
  async checkpoint(step: number): Promise<string> {
    await this.#start();
    if (this.#lastCheckpoint.step === step) return this.#lastCheckpoint.path;
    const actors: Record<string, ActorState> = {};
    for (const name of this.#graph.accepting("Snapshot")) {
      await this.#graph.send(name, { type: "Snapshot", step });
      const snap = await this.#graph.sink<ActorSnapshot>("events").receive();
      if (snap.type !== "ActorSnapshot" || snap.actor !== name) {
        throw new Error(
          `Cannot checkpoint: expected the snapshot of "${name}": current value is ${snap.type}`,
        );
      }
      actors[name] = { state: snap.state, files: snap.files };
    }
    const { reference } = this.#setup;
    await this.#graph.send("learner", {
      type: "Checkpoint",
      step,
      path: `${this.runDir}/checkpoint-${step}`,
      state: {
        sampled_tokens: this.#sampledTokens,
        live_config: liveConfigValues(this.#live, this.liveFields),
        ...(reference ? { reference } : {}),
      },
      actors,
    });
    const done = await this.#graph.sink<CheckpointSaved>("events").receive();
    await pruneCheckpoints(this.runDir, this.config.run.keep_last);
    this.#lastCheckpoint = { step, path: done.path };
    this.#lastSnapshots = actors;
    return done.path;
  }

  /**
   * Runs the loop to `run.steps` (or a stop request, or `run.max_sampled_tokens`), with the
   * evaluations `eval.before`/`every`/`after`, and writes `summary.json`. The graph is stopped
   * when it returns.
   *
   * @throws {ActorFailedError} When an actor failed (after the graph stopped).
   */
  async run(): Promise<TrainSummary> {
    const config = this.config;
    const { policy } = this.#setup;
    const steps = config.run.steps;
    const startStep = policy.startStep;
    const loop = this.control;
    const t0 = performance.now();
    let lastStep = startStep;
    try {
      await this.#start();
      // Plain words: what trains, on what, from which model, where the run is written.
      const model = config.model.preset ? `preset ${config.model.preset}` : config.model.init;
      const task = config.task.kind === "arithmetic" ? "arithmetic" : `${config.task.path}`;
      this.#log(
        `${config.algorithm.toUpperCase()} on ${task}: model ${model} ` +
          `(${policy.model.numParameters.toLocaleString("en-US")} parameters, ` +
          `${this.#setup.backend}), ${steps - startStep} steps of ` +
          `${config.sampler.prompts_per_step} prompts × ${config.grpo.num_generations}; ` +
          `run folder ${this.runDir}`,
      );
      await Deno.writeTextFile(
        `${this.runDir}/environment.jsonl`,
        JSON.stringify(await runEnvironment(config, this.#setup.backend, startStep)) + "\n",
        { append: true },
      );
      const before = config.eval.before ? await this.#runEval("before", startStep) : undefined;
      const tLoop = performance.now();
      let lastBusy = this.#graph.stats();
      for (let step = startStep + 1; step <= steps; step++) {
        // The actors hand messages over as resolved promises (microtasks) and the tensor math
        // is synchronous, so nothing else would run between steps: give the event loop one
        // turn (timers, Worker messages).
        await new Promise((resolve) => setTimeout(resolve, 0));
        this.#options.onStepBoundary?.();
        const action = await loop.atStepBoundary();
        if (action.checkpoint) {
          this.#log(`\ncheckpoint (requested): ${await this.checkpoint(step - 1)}`);
        }
        if (action.stop) break;
        if (action.config) {
          this.#live = action.config as TrainConfig & Record<string, unknown>;
          // Every live value goes to every actor that takes `Configure`: each applies its own.
          const message: Configure = {
            type: "Configure",
            values: liveConfigValues(this.#live, this.liveFields),
          };
          for (const name of this.#graph.accepting("Configure")) {
            await this.#graph.send(name, message);
          }
        }
        const tStep = performance.now();
        await this.#graph.send("prompt_source", { type: "Next", step });
        const stats = await this.#graph.sink<StepStats>("stats").receive();
        const busy = this.#graph.stats();
        const metrics: Record<string, number> = { step, ...stats.metrics };
        for (const [name, s] of Object.entries(busy)) {
          // Actors on the rollout path report their own time (see RolloutsSchema.timings).
          metrics[`time/${name}`] ??= (s.busyMs - (lastBusy[name]?.busyMs ?? 0)) / 1000;
          metrics[`queue/${name}`] = s.queueDepth;
          if (s.restarts > 0) metrics[`restarts/${name}`] = s.restarts;
        }
        lastBusy = busy;
        const stepSeconds = (performance.now() - tStep) / 1000;
        const actorSeconds = Object.keys(busy).reduce(
          (a, n) => a + (metrics[`time/${n}`] ?? 0),
          0,
        );
        metrics["time/step"] = stepSeconds;
        metrics["time/runtime_overhead"] = Math.max(0, stepSeconds - actorSeconds);
        const sampled = (metrics["completions/mean_length"] ?? 0) *
          config.sampler.prompts_per_step * config.grpo.num_generations;
        metrics["throughput/sampler_tokens_per_s"] = sampled /
          Math.max(1e-9, metrics["time/sampler"] ?? 0);
        this.#sampledTokens += Object.entries(metrics)
          .filter(([k]) => k.endsWith("completions/total_tokens"))
          .reduce((acc, [, v]) => acc + v, 0);
        metrics["tokens/sampled_total"] = this.#sampledTokens;
        await this.#writeLine(metrics);
        await writeAll(this.#samples, sampleLine(step, stats.samples));
        await this.#board?.writeSamples(step, stats.samples);
        loop.recordSamples(stats.samples);
        loop.recordStep(step, metrics, {
          actors: this.#graph.stats(),
          policyVersion: stats.policyVersion,
        });
        this.#options.onStep?.(step, metrics, (performance.now() - tLoop) / 1000);
        lastStep = step;
        const cpEvery = config.run.checkpoint_every;
        if (cpEvery > 0 && step % cpEvery === 0) await this.checkpoint(step);
        const every = this.#live.eval.every;
        if (every > 0 && step % every === 0 && step < steps) await this.#runEval("during", step);
        const budget = config.run.max_sampled_tokens;
        if (budget > 0 && this.#sampledTokens >= budget) break;
      }
      this.#options.onLoopEnd?.();
      return await this.#finish(lastStep, before, t0);
    } catch (e) {
      loop.markFailed(this.#failure ?? e);
      this.#started = false;
      await this.#graph.stop(e);
      await this.#graph.done.catch(() => {});
      throw this.#failure ?? e;
    }
  }

  /** The `live` settings now in force (`PATCH /config` changes them). */
  get liveConfig(): TrainConfig & Record<string, unknown> {
    return this.#live;
  }

  /** Stops the graph if it runs, closes the control server, the metrics file and the scorer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#started) {
      await this.#graph.stop("closed");
      await this.#graph.done.catch(() => {});
    }
    await this.control.close();
    this.#metrics.close();
    this.#samples.close();
    this.#board?.close();
    await this.#setup.scorer.close();
    // The graph's actors are closed; the models the run loaded are its own.
    disposePolicy(this.#setup.policy);
    // The threaded wasm backend's workers would keep a script's process alive.
    releaseWasmThreads();
  }

  async #finish(
    lastStep: number,
    before: EvalResult | undefined,
    t0: number,
  ): Promise<TrainSummary> {
    const config = this.config;
    const finalPath = await this.checkpoint(lastStep);
    this.#log(`checkpoint: ${finalPath}`);
    const after = config.eval.after ? await this.#runEval("after", lastStep) : undefined;
    const seconds = (performance.now() - t0) / 1000;
    const split = config.eval.split === "dev" ? "Dev" : "Held-out";
    if (this.#table.length) {
      this.#log(
        `\n${split} evaluation (${this.#setup.evalSet.length} problems, ${
          config.eval.greedy ? "greedy" : `temperature ${config.eval.temperature}`
        }):`,
      );
      const header = ["policy", "step", "accuracy %", "format %", "mean tokens"];
      if (this.#correction) header.push("Acc@t2 %", "Δi→c", "Δc→i", "McNemar p");
      this.#log(formatTable(header, this.#table));
      if (this.#correction) {
        this.#log(
          "Acc@t2: after one guided correction of each answer by the same policy " +
            "(deno task eval --two-turn --rounds 1); Δ: points of all problems going " +
            "wrong → right (i→c) and right → wrong (c→i)",
        );
      }
    }
    const source = this.#lastSnapshots["prompt_source"]?.state;
    const summary: TrainSummary = {
      steps: lastStep,
      seconds,
      seed: config.run.seed,
      accuracy_before: before?.accuracy ?? null,
      accuracy_after: after?.accuracy ?? null,
      sampled_tokens: this.#sampledTokens,
      checkpoint: finalPath,
      data: {
        bad_lines: this.#setup.task.badLines.length,
        rejected_prompts: Number(source?.["rejected_prompts"] ?? 0),
        truncated_prompts: Number(source?.["truncated_prompts"] ?? 0),
      },
    };
    if (Object.values(summary.data).some((n) => n > 0)) {
      this.#log(
        `data: ${summary.data.bad_lines} bad lines skipped, ${summary.data.rejected_prompts} ` +
          `prompts rejected, ${summary.data.truncated_prompts} truncated (prompts.on_long_prompt)`,
      );
    }
    await Deno.writeTextFile(
      `${this.runDir}/summary.json`,
      JSON.stringify(summary, null, 2) + "\n",
    );
    this.#log(`done in ${seconds.toFixed(0)} s: ${this.runDir}`);
    this.control.markStopped();
    await this.#graph.stop("run finished");
    await this.#graph.done;
    this.#started = false;
    return summary;
  }

  async #writeLine(record: Record<string, number>): Promise<void> {
    await writeAll(this.#metrics, JSON.stringify(record) + "\n");
    await this.#board?.writeMetrics(record);
  }

  async #runEval(label: "before" | "during" | "after", step: number): Promise<EvalResult> {
    const res = await this.evaluate(label);
    const record: Record<string, number> = {
      step,
      "eval/accuracy": res.accuracy,
      "eval/format_rate": res.formatted,
      "eval/mean_length": res.meanLength,
    };
    const row: (string | number)[] = [
      label,
      step,
      (100 * res.accuracy).toFixed(1),
      (100 * res.formatted).toFixed(1),
      res.meanLength.toFixed(1),
    ];
    const c = res.correction;
    if (c) {
      record["eval/acc_t2"] = c.acc_t2;
      record["eval/delta_i_to_c"] = c.delta_i_to_c;
      record["eval/delta_c_to_i"] = c.delta_c_to_i;
      record["eval/mcnemar_p"] = c.mcnemar_p;
      if (c.overflow > 0) record["eval/correction_overflow"] = c.overflow;
      if (c.truncated > 0) record["eval/correction_truncated"] = c.truncated;
      row.push(
        (100 * c.acc_t2).toFixed(1),
        (100 * c.delta_i_to_c).toFixed(1),
        (100 * c.delta_c_to_i).toFixed(1),
        formatP(c.mcnemar_p),
      );
    }
    await this.#writeLine(record);
    this.control.recordEval(step, record);
    this.#table.push(row);
    const split = SPLIT_NAMES[this.config.eval.split];
    const count = this.#setup.evalSet.length;
    this.#log(
      `${split} accuracy ${label} training: ${(100 * res.accuracy).toFixed(1)}% ` +
        `(${count} problems, ${res.seconds.toFixed(1)} s)`,
    );
    if (c) {
      const long = [
        c.overflow > 0 ? `${c.overflow} correction prompts rejected` : "",
        c.truncated > 0 ? `${c.truncated} truncated` : "",
      ].filter(Boolean).join(", ");
      this.#log(
        `${split} accuracy ${label} training, after one guided correction (Acc@t2): ` +
          `${(100 * c.acc_t2).toFixed(1)}%, Δi→c ${(100 * c.delta_i_to_c).toFixed(1)}%, ` +
          `Δc→i ${(100 * c.delta_c_to_i).toFixed(1)}%, McNemar p ${formatP(c.mcnemar_p)} ` +
          `(${count} problems, ${c.seconds.toFixed(1)} s${
            long ? `; ${long} (prompts.on_long_prompt)` : ""
          })`,
      );
    }
    this.#options.onEval?.(label, step, res);
    return res;
  }
}

/** A p-value as `deno task eval` prints it: two significant digits, scientific below 1e-4. */
function formatP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

/** Appends `text` to `file` whole (a write may take fewer bytes than it is given). */
async function writeAll(file: Deno.FsFile, text: string): Promise<void> {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(await file.write(bytes));
}

/**
 * A short fingerprint of a bearer token: the first 8 hex digits of its SHA-256, enough to tell
 * two tokens apart and of no use to anyone who reads it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenFingerprint } from "./trainer.ts";
 *
 * assert.match(await tokenFingerprint("secret"), /^sha256:[0-9a-f]{8}$/);
 * ```
 */
export async function tokenFingerprint(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  const hex = [...new Uint8Array(digest).slice(0, 4)].map((b) => b.toString(16).padStart(2, "0"));
  return `sha256:${hex.join("")}`;
}

/** The control loop of a run: the HTTP server when `control.enabled` (and allowed). */
async function startControl(
  setup: RunSetup,
  runDir: string,
  log: (line: string) => void,
  warn: (line: string) => void,
): Promise<LoopControl> {
  const config = setup.config;
  const controlOptions: LoopControlOptions = {
    startStep: setup.policy.startStep,
    totalSteps: config.run.steps,
    policyVersion: setup.policy.version,
    eventsPath: `${runDir}/events.jsonl`,
    noReference: !setup.policy.refModel,
    liveFields: liveFieldsFor(setup.plugin),
    sectionSchemas: liveSectionSchemas(setup.registry.sections()),
  };
  const net = config.control.enabled
    ? await Deno.permissions.query({ name: "net", host: config.control.host })
    : undefined;
  if (net && net.state !== "granted") {
    warn(
      `control: not started: no permission to listen on ${config.control.host} ` +
        `(run with --allow-net, as deno task train does, or set control.enabled: false)`,
    );
  } else if (config.control.enabled) {
    const server = await startControlServer(config, {
      ...controlOptions,
      host: config.control.host,
      port: config.control.port,
      runDir,
    });
    log(`control: ${server.url} (dashboard; deno task ctl --run-dir ${runDir})`);
    // The token itself stays out of stdout (a redirected log is often world-readable).
    log(
      `control token: in ${server.tokenPath} (mode 0600), fingerprint ${await tokenFingerprint(
        server.token,
      )}`,
    );
    return server;
  }
  return new LocalLoopControl(config, controlOptions);
}
