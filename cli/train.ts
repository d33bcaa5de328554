/**
 * `deno task train`: runs an RL algorithm's actor graph on the embedded default (or the
 * config given), with a held-out evaluation before and after, a progress line, metrics in
 * `<run>/metrics.jsonl`, the resolved config in `<run>/config.yaml` and checkpoints.
 *
 * A control server (`server/`) runs beside the loop: its URL is printed and written to
 * `<run>/control.json`, its bearer token to `<run>/control-token`. Pause, resume, stop,
 * checkpoint and live config changes take effect at step boundaries.
 *
 * Exit codes: 0 done (also after a stop request, SIGINT or SIGTERM, which finish the step and
 * checkpoint), 1 an actor failed, 2 bad command line or config.
 *
 * @module
 */
import { parseTrainArgs, TRAIN_HELP } from "./args.ts";
import { configToYaml } from "../config/load.ts";
import { deriveConfig } from "../training/config.ts";
import { type Backend, tensorBackends } from "../config/schema.ts";
import { type TrainConfig } from "../algorithms/builtins.ts";
import { formatTable, runMain } from "./common.ts";
import {
  arithmeticOptions,
  loadStartingPolicy,
  loadTrainingTask,
  promptRenderer,
  resolveRepoPath,
} from "../training/setup.ts";
import { ProgressReporter } from "./progress.ts";
import { watchSignals } from "./signals.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { loadChatTemplate, selfContainedTemplate } from "../prompts/chat_template.ts";
import { buildScorer } from "../training/rewards.ts";
import { initBackend } from "../model/backend.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { attachLora } from "../model/lora.ts";
import type { AlgorithmGraphInput } from "../algorithms/registry.ts";
import { loadConfigWithPlugins } from "../training/plugins.ts";
import { decodeOptimizerState, OPTIMIZER_FILE } from "../actors/learner.ts";
import { type SourceProblem, toQuery } from "../actors/prompt_source.ts";
import type {
  ActorSnapshot,
  ActorState,
  CheckpointSaved,
  Configure,
  Scored,
  StepStats,
} from "../actors/messages.ts";
import { STATEFUL_ACTORS } from "../actors/snapshot.ts";
import { OpenAiSampler } from "../actors/openai_sampler.ts";
import {
  latestCheckpoint,
  liveConfigOverrides,
  liveConfigValues,
  pruneCheckpoints,
  readTrainerState,
  restoreMessages,
  type TrainerState,
  truncateMetrics,
  weightsSha256,
} from "../training/resume.ts";
import {
  LocalLoopControl,
  type LoopControl,
  type LoopControlOptions,
  startControlServer,
} from "../server/serve.ts";
import { ActorFailedError, type Graph } from "../actors/runtime/mod.ts";
import type { AlgorithmPlugin } from "../algorithms/registry.ts";
import { placeActors, wasmThreadsFor } from "./actor.ts";
import type { Tokenizer } from "../model/char_tokenizer.ts";

/** Held-out evaluation of the policy the Sampler holds, routed through the graph. */
async function evaluate(
  graph: Graph,
  label: string,
  problems: SourceProblem[],
  config: TrainConfig,
  tokenizer: Tokenizer,
  render: (q: string) => string,
): Promise<{ accuracy: number; formatted: number; meanLength: number; seconds: number }> {
  const t0 = performance.now();
  await graph.send("prompt_source", {
    type: "Evaluate",
    label,
    queries: problems.map((p) => toQuery(p, { tokenizer, renderPrompt: render })),
    batchSize: config.eval.batch_size,
    params: {
      maxNewTokens: config.eval.max_new_tokens,
      temperature: config.eval.temperature,
      topP: 1,
      topK: 0,
      greedy: config.eval.greedy,
    },
  });
  const scored = await graph.sink<Scored>("eval").receive();
  const n = Math.max(1, scored.verdicts.length);
  return {
    accuracy: scored.verdicts.filter((v) => v.correct).length / n,
    formatted:
      scored.verdicts.filter((v) =>
        v.reason !== "no </think> tag" && v.reason !== "unclosed <think>"
      ).length / n,
    meanLength: scored.rollouts.reduce((a, r) => a + r.completionIds.length, 0) / n,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The Sampler's OpenAI-compatible backend of `sampler.openai` (`sampler.backend: openai`). The
 * server is taken to serve `model.init` (version 0): a resumed run pushes its policy first.
 */
function openAiSampler(config: TrainConfig): OpenAiSampler {
  const o = config.sampler.openai;
  return new OpenAiSampler({
    baseUrl: o.base_url!,
    model: o.model,
    ...(o.api_key === undefined ? {} : { apiKey: o.api_key }),
    maxConcurrency: o.max_concurrency,
    maxRetries: o.max_retries,
    timeoutS: o.timeout_s,
    weightSync: o.weight_sync,
    syncDir: o.sync_dir,
    loraName: o.lora_name,
    reloadPath: o.reload_path,
  });
}

/** Actors of the built-in graphs that take `Configure` (live settings). */
const CONFIGURABLE_ACTORS = ["prompt_source", "corrector", "ref_policy", "learner"];

/** The live settings of `config` as one `Configure` message. */
function configureMessage(config: TrainConfig): Configure {
  const message: Configure = {
    type: "Configure",
    lr: config.learner.lr,
    temperature: config.sampler.temperature,
    topP: config.sampler.top_p,
    cliprange: config.ppo.cliprange,
  };
  if (config.algorithm === "grpo" || config.algorithm === "mgrpo") {
    Object.assign(message, { beta: config.grpo.beta, epsilon: config.grpo.epsilon });
  }
  if (config.algorithm === "mgrpo") {
    Object.assign(message, {
      guidePhrases: config.mgrpo.guide_phrases,
      numCorrections: config.mgrpo.num_corrections,
    });
  }
  return message;
}

/** Options of {@linkcode main}. */
export interface TrainMainOptions {
  /**
   * Serve one actor instead of running the loop (`cli/actor.ts`): called with everything the
   * graph is built from, once it is built exactly as a coordinator builds it.
   * @default undefined
   */
  host?: (
    built: { config: TrainConfig; plugin: AlgorithmPlugin; graphInput: AlgorithmGraphInput },
  ) => Promise<number>;
  /**
   * The tensor backend this process starts (a host's: its actor's).
   * @default the Learner's, `tensorBackends(config).learner`
   */
  backend?: (config: TrainConfig) => Backend;
}

/** `deno task train` with `argv` as its command line; resolves to the exit code. */
export async function main(argv: string[], options: TrainMainOptions = {}): Promise<number> {
  const args = parseTrainArgs(argv);
  if (args.help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  let { config, registry } = await loadConfigWithPlugins(args.config, {
    overrides: args.overrides,
  });
  const runDir = args.runDir ?? args.resume ?? deriveConfig(config).runDir;
  let resumeFrom: string | undefined;
  let saved: TrainerState = {};
  if (args.resume) {
    resumeFrom = await latestCheckpoint(args.resume);
    saved = await readTrainerState(resumeFrom);
    // The resumed run keeps its config and the live changes in force at the checkpoint;
    // command-line overrides still apply on top.
    ({ config, registry } = await loadConfigWithPlugins(`${args.resume}/config.yaml`, {
      overrides: [...liveConfigOverrides(saved), ...args.overrides],
    }));
  }
  // Reward modules are imported before anything is written, so a bad path leaves no run dir.
  const scorer = await buildScorer(config, {
    configPath: args.config ?? "configs/tiny-mgrpo.yaml",
  });
  // The dataset is read before anything is written: a malformed line leaves no run dir.
  const task = await loadTrainingTask(config.task, config.eval.split);
  const splitName = config.eval.split === "dev" ? "dev" : "held-out";
  const { keys, dataset, badLines } = task;
  for (const bad of badLines.slice(0, 5)) console.error(`skipped: ${bad.message}`);
  if (badLines.length > 5) console.error(`skipped: ... ${badLines.length - 5} more bad lines`);
  await Deno.mkdir(runDir, { recursive: true });
  await Deno.writeTextFile(`${runDir}/config.yaml`, configToYaml(config));

  // The Learner's backend (learner.backend, else model.backend) is this process's; the
  // config refuses a different in-process sampler.backend.
  const backend = await initBackend(options.backend?.(config) ?? tensorBackends(config).learner, {
    wasmThreads: wasmThreadsFor(config),
  });
  const init = resumeFrom ? await loadCheckpoint(resumeFrom) : await loadStartingPolicy(config);
  const tokenizer = init.tokenizer;
  // Ids beyond the tokenizer (a padded embedding table) are never sampled nor scored.
  init.model.limitVocabulary(tokenizer.vocabSize);
  init.model.gradientCheckpointing = config.learner.gradient_checkpointing;
  const lora = config.model.lora;
  if (lora.r > 0 && !init.model.lora) {
    // A resumed LoRA checkpoint brings its adapters; a new run attaches fresh ones.
    attachLora(init.model, {
      r: lora.r,
      alpha: lora.alpha,
      targetModules: lora.target_modules,
      seed: config.run.seed,
    });
  }
  const samplerModel = config.sampler.share_weights
    ? init.model
    : init.model.clone({ trainable: false });
  const plugin = registry.get(config.algorithm);
  const start = plugin.needsReference(config) && resumeFrom
    ? await loadStartingPolicy(config, { trainable: false })
    : undefined;
  start?.model.limitVocabulary(start.tokenizer.vocabSize);
  const refModel = plugin.needsReference(config)
    ? (start ? start.model : init.model.clone({ trainable: false }))
    : undefined;
  if (refModel && resumeFrom) {
    // A checkpoint of another architecture than the reference cannot share its KL.
    const a = init.model.config as unknown as Record<string, unknown>;
    const b = refModel.config as unknown as Record<string, unknown>;
    const field = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .find((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (field !== undefined) {
      throw new Error(
        `Cannot resume from "${resumeFrom}": its architecture differs from the reference ` +
          `policy "${config.model.init}": field "${field}" is ${JSON.stringify(a[field])} in ` +
          `the checkpoint and ${JSON.stringify(b[field])} in the reference`,
      );
    }
  }
  // The reference policy's identity: a resumed run must measure KL to the same weights.
  const reference = refModel
    ? {
      init: config.model.preset ? `preset:${config.model.preset}` : config.model.init,
      sha256: config.model.preset
        ? `seed-${config.run.seed}` // a preset is rebuilt from its seed
        : await weightsSha256(resolveRepoPath(config.model.init)),
    }
    : undefined;
  if (reference && saved.reference && saved.reference.sha256 !== reference.sha256) {
    throw new Error(
      `Cannot resume from "${resumeFrom}": the reference policy "${reference.init}" changed ` +
        `since the checkpoint was written: its model.safetensors has SHA-256 ` +
        `${reference.sha256}, the checkpoint says ${saved.reference.sha256}`,
    );
  }
  const startStep = resumeFrom ? Number(init.state.step ?? 0) : 0;
  const version = resumeFrom ? Number(init.state.policy_version ?? startStep) : 0;
  // Checkpoints written before exact resume hold no actor snapshots: those runs go on with a
  // fresh sampling stream, as they always did.
  const restores = resumeFrom ? await restoreMessages(resumeFrom, saved) : new Map();
  const exact = resumeFrom !== undefined && saved.actors !== undefined;
  if (resumeFrom) {
    const dropped = await truncateMetrics(`${runDir}/metrics.jsonl`, startStep);
    console.log(
      `resume: ${resumeFrom} (step ${startStep}${
        exact ? "" : "; written before exact resume: sampling restarts from a new stream"
      }${dropped ? `; dropped ${dropped} metrics lines logged after it` : ""})`,
    );
  }
  let optimizer;
  if (resumeFrom) {
    try {
      optimizer = decodeOptimizerState(
        await Deno.readFile(`${resumeFrom}/${OPTIMIZER_FILE}`),
        `${resumeFrom}/${OPTIMIZER_FILE}`,
      );
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  if (config.prompts.template === undefined && !(tokenizer instanceof CharTokenizer)) {
    // A Hugging Face model is prompted with its own chat template (unless the config sets one).
    const folder = resolveRepoPath(config.model.init);
    const template = await loadChatTemplate(folder).catch(() => undefined);
    if (template) {
      config = {
        ...config,
        prompts: { ...config.prompts, template: selfContainedTemplate(template) },
      };
      console.log(`prompts: the chat template of ${template.source}`);
    }
  }
  const render = promptRenderer(config.prompts);
  // Held-out problems whose prompt the model cannot take are left out of the evaluation.
  const evalSet = task.evalSet.filter((p) => {
    try {
      return tokenizer.encode(render(p.question)).length <
        init.model.config.max_position_embeddings;
    } catch {
      return false;
    }
  });
  if (evalSet.length < task.evalSet.length) {
    console.error(
      `eval: ${task.evalSet.length - evalSet.length} held-out problems left out: prompt too long ` +
        `for the model's context or not encodable`,
    );
  }

  const steps = config.run.steps;
  const metricsFile = await Deno.open(`${runDir}/metrics.jsonl`, {
    create: true,
    append: true,
    write: true,
  });
  const encoder = new TextEncoder();
  let failure: ActorFailedError | undefined;
  const graphInput: AlgorithmGraphInput = {
    config,
    mailboxCapacity: config.runtime.mailbox_capacity,
    score: scorer.score,
    promptSource: {
      tokenizer,
      renderPrompt: render,
      task: arithmeticOptions(config.task),
      exclude: keys,
      seed: config.run.seed,
      promptsPerStep: config.sampler.prompts_per_step,
      numGenerations: config.grpo.num_generations,
      cursor: startStep * config.sampler.prompts_per_step,
      ...(dataset ? { dataset } : {}),
      maxPromptTokens: config.prompts.max_prompt_tokens ||
        init.model.config.max_position_embeddings - 1,
      onLongPrompt: config.prompts.on_long_prompt,
      sampling: {
        maxNewTokens: config.sampler.max_new_tokens,
        temperature: config.sampler.temperature,
        topP: config.sampler.top_p,
        topK: config.sampler.top_k,
        greedy: false,
      },
    },
    sampler: {
      model: samplerModel,
      tokenizer,
      seed: config.run.seed + (resumeFrom && !exact ? startStep * 7919 : 0),
      version,
      maxStaleness: config.sampler.max_staleness,
      ...(config.sampler.backend === "openai" ? { openai: openAiSampler(config) } : {}),
    },
    ...(refModel
      ? {
        refPolicy: {
          model: refModel,
          padId: tokenizer.padId,
          temperature: config.sampler.temperature,
        },
      }
      : {}),
    learner: {
      model: init.model,
      tokenizer: tokenizer as never,
      lr: config.learner.lr,
      lrSchedule: config.learner.lr_schedule,
      warmupRatio: config.learner.warmup_ratio,
      minLrRatio: config.learner.min_lr_ratio,
      weightDecay: config.learner.weight_decay,
      adamBeta1: config.learner.adam_beta1,
      adamBeta2: config.learner.adam_beta2,
      adamEps: config.learner.adam_eps,
      maxGradNorm: config.learner.max_grad_norm,
      maxConsecutiveSkips: config.learner.max_consecutive_skips,
      shareWeights: config.sampler.share_weights,
      microBatchSize: config.learner.micro_batch_size,
      temperature: config.sampler.temperature,
      totalSteps: steps,
      maskTruncated: config.grpo.mask_truncated_completions,
      // The driver checkpoints (with every actor's snapshot), not the Learner on its own.
      checkpointEvery: 0,
      checkpointDir: runDir,
      keepLast: config.run.keep_last,
      checkpointState: () => ({ seed: config.run.seed, init: config.model.init }),
      ...(resumeFrom
        ? {
          resume: {
            optimizerSteps: saved.optimizer_steps ?? optimizer?.step ?? startStep,
            version,
            consecutiveSkips: saved.consecutive_skips ?? 0,
            ...(optimizer ? { optimizer } : {}),
          },
        }
        : {}),
    },
    onFailure: (report) => {
      failure = new ActorFailedError(report.actor, report.message, report.cause);
    },
    supervision: {
      maxRestarts: config.runtime.max_restarts,
      restartDelayMs: config.runtime.restart_delay_ms,
      faults: config.faults,
      exitWorker: () => {
        if (!scorer.killWorker) {
          throw new Error(
            'Cannot inject "exit_worker": the answer checker runs no worker pool ' +
              "(set reward.checker: math)",
          );
        }
        scorer.killWorker();
      },
      // Actors placed in a Worker or on NATS (`placement:`): proxies that forward to them.
      placement: placeActors(config, {
        configPath: args.config,
        overrides: args.overrides,
        ...(args.resume ? { resume: args.resume } : {}),
      }),
    },
  };
  if (options.host) {
    try {
      return await options.host({ config, plugin, graphInput });
    } finally {
      metricsFile.close();
      await scorer.close();
    }
  }
  const graph = plugin.buildGraph(graphInput);

  const controlOptions: LoopControlOptions = {
    startStep,
    totalSteps: steps,
    policyVersion: version,
    eventsPath: `${runDir}/events.jsonl`,
    noReference: !refModel,
  };
  let control: LoopControl | undefined;
  const net = config.control.enabled
    ? await Deno.permissions.query({ name: "net", host: config.control.host })
    : undefined;
  if (net && net.state !== "granted") {
    console.error(
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
    console.log(`control: ${server.url} (dashboard; deno task ctl --run-dir ${runDir})`);
    console.log(`control token: ${server.token} (also in ${server.tokenPath}, mode 0600)`);
    control = server;
  }
  control ??= new LocalLoopControl(config, controlOptions);
  const loop = control;

  let signalled = false;
  const onSignal = (count: number) => {
    if (count >= 2) Deno.exit(130); // a second signal exits at once
    if (signalled) return;
    signalled = true;
    loop.requestStop();
    console.error("\nStopping after this step (send the signal again to exit at once)");
  };
  // Listened to in a Worker: this thread may not turn its event loop for a whole step.
  const signals = await watchSignals({ onSignal });

  const t0 = performance.now();
  let lastStep = startStep;
  const table: (string | number)[][] = [];
  try {
    await graph.start();
    const present = graph.stats();
    for (const [name, message] of restores) {
      if (!(name in present)) {
        throw new Error(
          `Cannot resume from "${resumeFrom}": it holds a snapshot of actor "${name}", ` +
            `which the ${config.algorithm} graph does not have`,
        );
      }
      await graph.send(name, message);
    }
    console.log(
      `mgrpo: ${config.algorithm} on ${config.task.kind}, ${init.model.numParameters} parameters, ` +
        `backend ${backend}, ${
          steps - startStep
        } steps of ${config.sampler.prompts_per_step}×${config.grpo.num_generations}, run dir ${runDir}`,
    );
    const writeLine = (record: Record<string, number>) =>
      metricsFile.write(encoder.encode(JSON.stringify(record) + "\n"));
    const runEval = async (label: "before" | "during" | "after", step: number) => {
      const res = await evaluate(graph, label, evalSet, config, tokenizer, render);
      const record = {
        step,
        "eval/accuracy": res.accuracy,
        "eval/format_rate": res.formatted,
        "eval/mean_length": res.meanLength,
      };
      await writeLine(record);
      loop.recordEval(step, record);
      table.push([
        label,
        step,
        (100 * res.accuracy).toFixed(1),
        (100 * res.formatted).toFixed(1),
        res.meanLength.toFixed(1),
      ]);
      console.log(
        `${splitName} accuracy ${label} training: ${(100 * res.accuracy).toFixed(1)}% ` +
          `(${evalSet.length} problems, ${res.seconds.toFixed(1)} s)`,
      );
      return res;
    };
    const before = config.eval.before ? await runEval("before", startStep) : undefined;
    const progress = new ProgressReporter(steps, startStep, config.run.log_every);
    const tLoop = performance.now();
    let sampledTokens = resumeFrom ? Number(saved.sampled_tokens ?? 0) : 0;
    let lastBusy = graph.stats();
    let live = config;
    /**
     * Writes `checkpoint-<step>` at a step boundary: every stateful actor's snapshot first
     * (all actors are idle between steps, so they describe the same step), then the Learner
     * writes them with the policy under one manifest; old ones beyond `keep_last` go.
     */
    let lastCheckpoint = { step: -1, path: "" };
    let lastSnapshots: Record<string, ActorState> = {};
    const checkpoint = async (step: number): Promise<string> => {
      if (lastCheckpoint.step === step) return lastCheckpoint.path;
      const actors: Record<string, ActorState> = {};
      for (const name of STATEFUL_ACTORS) {
        if (!(name in present)) continue;
        await graph.send(name, { type: "Snapshot", step });
        const snap = await graph.sink<ActorSnapshot>("events").receive();
        if (snap.type !== "ActorSnapshot" || snap.actor !== name) {
          throw new Error(
            `Cannot checkpoint: expected the snapshot of "${name}": current value is ${snap.type}`,
          );
        }
        actors[name] = { state: snap.state, files: snap.files };
      }
      await graph.send("learner", {
        type: "Checkpoint",
        step,
        path: `${runDir}/checkpoint-${step}`,
        state: {
          sampled_tokens: sampledTokens,
          live_config: liveConfigValues(live),
          ...(reference ? { reference } : {}),
        },
        actors,
      });
      const done = await graph.sink<CheckpointSaved>("events").receive();
      await pruneCheckpoints(runDir, config.run.keep_last);
      lastCheckpoint = { step, path: done.path };
      lastSnapshots = actors;
      return done.path;
    };
    for (let step = startStep + 1; step <= steps; step++) {
      // The actors hand messages over as resolved promises (microtasks) and the tensor math is
      // synchronous, so nothing else would run between steps: give the event loop one turn
      // (timers, Worker messages), and read the signal Worker's count.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (signals.count > 0) onSignal(signals.count);
      const action = await loop.atStepBoundary();
      if (action.checkpoint) console.log(`\ncheckpoint (requested): ${await checkpoint(step - 1)}`);
      if (action.stop) break;
      if (action.config) {
        live = action.config;
        const message = configureMessage(live);
        const present = graph.stats();
        for (const name of CONFIGURABLE_ACTORS) {
          if (name in present) await graph.send(name, message);
        }
        progress.logEvery = live.run.log_every;
      }
      const tStep = performance.now();
      await graph.send("prompt_source", { type: "Next", step });
      const stats = await graph.sink<StepStats>("stats").receive();
      const busy = graph.stats();
      const metrics: Record<string, number> = { step, ...stats.metrics };
      for (const [name, s] of Object.entries(busy)) {
        // Actors on the rollout path report their own time (see RolloutsSchema.timings).
        metrics[`time/${name}`] ??= (s.busyMs - (lastBusy[name]?.busyMs ?? 0)) / 1000;
        metrics[`queue/${name}`] = s.queueDepth;
        if (s.restarts > 0) metrics[`restarts/${name}`] = s.restarts;
      }
      lastBusy = busy;
      const stepSeconds = (performance.now() - tStep) / 1000;
      const actorSeconds = Object.keys(busy).reduce((a, n) => a + (metrics[`time/${n}`] ?? 0), 0);
      metrics["time/step"] = stepSeconds;
      metrics["time/runtime_overhead"] = Math.max(0, stepSeconds - actorSeconds);
      const sampled = (metrics["completions/mean_length"] ?? 0) * config.sampler.prompts_per_step *
        config.grpo.num_generations;
      metrics["throughput/sampler_tokens_per_s"] = sampled /
        Math.max(1e-9, metrics["time/sampler"] ?? 0);
      sampledTokens += Object.entries(metrics)
        .filter(([k]) => k.endsWith("completions/total_tokens"))
        .reduce((acc, [, v]) => acc + v, 0);
      metrics["tokens/sampled_total"] = sampledTokens;
      await writeLine(metrics);
      loop.recordSamples(stats.samples.map((s) => ({
        prompt: s.prompt,
        completion: s.completion,
        reward: s.reward,
        reason: s.reason,
        ...(s.correct === undefined ? {} : { correct: s.correct }),
        ...(s.layer === undefined ? {} : { layer: s.layer }),
        ...(s.correction === undefined ? {} : { correction: s.correction }),
      })));
      loop.recordStep(step, metrics, {
        actors: graph.stats(),
        policyVersion: stats.policyVersion,
      });
      progress.update(step, metrics, (performance.now() - tLoop) / 1000);
      lastStep = step;
      const cpEvery = config.run.checkpoint_every;
      if (cpEvery > 0 && step % cpEvery === 0) await checkpoint(step);
      const every = live.eval.every;
      if (every > 0 && step % every === 0 && step < steps) await runEval("during", step);
      const budget = config.run.max_sampled_tokens;
      if (budget > 0 && sampledTokens >= budget) break;
    }
    progress.done();
    const finalPath = await checkpoint(lastStep);
    console.log(`checkpoint: ${finalPath}`);
    const after = config.eval.after ? await runEval("after", lastStep) : undefined;
    const seconds = (performance.now() - t0) / 1000;
    if (table.length) {
      console.log(
        `\n${splitName === "dev" ? "Dev" : "Held-out"} evaluation (${evalSet.length} problems, ${
          config.eval.greedy ? "greedy" : `temperature ${config.eval.temperature}`
        }):`,
      );
      console.log(formatTable(["policy", "step", "accuracy %", "format %", "mean tokens"], table));
    }
    const summary = {
      steps: lastStep,
      seconds,
      seed: config.run.seed,
      accuracy_before: before?.accuracy ?? null,
      accuracy_after: after?.accuracy ?? null,
      sampled_tokens: sampledTokens,
      checkpoint: finalPath,
      data: {
        bad_lines: badLines.length,
        rejected_prompts: Number(lastSnapshots["prompt_source"]?.state["rejected_prompts"] ?? 0),
        truncated_prompts: Number(lastSnapshots["prompt_source"]?.state["truncated_prompts"] ?? 0),
      },
    };
    if (Object.values(summary.data).some((n) => n > 0)) {
      console.log(
        `data: ${summary.data.bad_lines} bad lines skipped, ${summary.data.rejected_prompts} ` +
          `prompts rejected, ${summary.data.truncated_prompts} truncated (prompts.on_long_prompt)`,
      );
    }
    await Deno.writeTextFile(`${runDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
    console.log(`done in ${seconds.toFixed(0)} s: ${runDir}`);
    loop.markStopped();
    await graph.stop("run finished");
    await graph.done;
    return 0;
  } catch (e) {
    loop.markFailed(failure ?? e);
    await graph.stop(e);
    await graph.done.catch(() => {});
    const err = failure ?? (e instanceof ActorFailedError ? e : undefined);
    if (err) {
      console.error(
        `\nActorFailed: actor "${err.actor}" failed while handling "${err.messageType}": ${
          (err.cause as Error)?.message ?? err.cause
        }`,
      );
      return 1;
    }
    throw e;
  } finally {
    await loop.close();
    metricsFile.close();
    await scorer.close();
    signals.close();
  }
}

if (import.meta.main) await runMain((argv) => main(argv));
