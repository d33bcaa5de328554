/**
 * Everything a training graph is built from, from a validated config: the starting (or
 * resumed) policy on its tensor backend, the reference policy when the algorithm needs one,
 * the task and its held-out problems, the scorer, and {@linkcode buildGraphInput}, which turns
 * them into the actors' inputs. The `Trainer` builds its graph from it, and a host of one
 * actor placed apart (`cli/actor.ts`) builds the same input to serve that actor.
 *
 * @module
 */
import type { Backend } from "../config/schema.ts";
import { tensorBackends } from "../config/schema.ts";
import { ConfigError, configToYaml } from "../config/load.ts";
import { checkRunDir, claimRunDir, type RunDirClaim } from "./run_dir.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import type {
  AlgorithmGraphInput,
  AlgorithmPlugin,
  AlgorithmRegistry,
} from "../algorithms/registry.ts";
import { builtinAlgorithms } from "../algorithms/builtins.ts";
import type { ActorFailed, Placement } from "../actors/runtime/mod.ts";
import { fittedQuery, type SourceProblem } from "../actors/prompt_source.ts";
import type { Query, Restore } from "../actors/messages.ts";
import { OpenAiSampler } from "../actors/openai_sampler.ts";
import { decodeOptimizerState, OPTIMIZER_FILE } from "../actors/learner.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { initBackend } from "../model/backend.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { attachLora } from "../model/lora.ts";
import type { Transformer } from "../model/transformer.ts";
import type { AdamWState } from "../model/optimizer.ts";
import { loadChatTemplate, selfContainedTemplate } from "../prompts/chat_template.ts";
import { buildScorer, type RunScorer } from "./rewards.ts";
import {
  arithmeticOptions,
  loadStartingPolicy,
  loadTrainingTask,
  promptRenderer,
  resolveModelDir,
  type TrainingTask,
} from "./setup.ts";
import {
  restoreMessages,
  type ResumePoint,
  type TrainerState,
  truncateMetrics,
  weightsSha256,
} from "./resume.ts";
export type { ResumePoint } from "./resume.ts";
import { wasmThreadsFor } from "./placement.ts";

/** The policy a run trains, as loaded for it. */
export interface Policy {
  /** The Learner's model (trainable; LoRA attached when `model.lora.r > 0`). */
  readonly model: Transformer;
  /** The Sampler's model: `model` itself with `sampler.share_weights`, else a frozen copy. */
  readonly samplerModel: Transformer;
  /** The frozen reference policy, when the algorithm needs one. */
  readonly refModel: Transformer | undefined;
  readonly tokenizer: Tokenizer;
  /** The step the run starts after (0, or the resumed checkpoint's). */
  readonly startStep: number;
  /** The policy version the Sampler starts at. */
  readonly version: number;
}

/** Options of {@linkcode setupRun}. */
export interface SetupOptions {
  /** The run folder. */
  readonly runDir: string;
  /** The registry `config.algorithm` is looked up in. @default the built-ins */
  readonly registry?: AlgorithmRegistry;
  /** The checkpoint a resumed run continues from. @default a new run */
  readonly resume?: ResumePoint;
  /** Path of the config file, for messages and reward modules. @default the embedded default */
  readonly configPath?: string;
  /** The tensor backend this process starts. @default the Learner's */
  readonly backend?: Backend;
  /**
   * Write to the run folder (`config.yaml`, dropping metrics lines after a resumed
   * checkpoint); a host of one actor writes nothing.
   * @default true
   */
  readonly write?: boolean;
  /** Where notes go (a skipped dataset line, the chat template used). @default console.error */
  readonly warn?: (line: string) => void;
  /** Where progress notes go (resume). @default console.log */
  readonly log?: (line: string) => void;
  /**
   * How a new run claims `runDir` (refuse a non-empty one, or move it aside; link the default
   * name). @default no checks (a resumed run, or a caller that checked)
   */
  readonly claim?: RunDirClaim;
}

/** What {@linkcode setupRun} prepared. */
export interface RunSetup {
  /** The config, with a Hugging Face model's chat template filled in. */
  readonly config: TrainConfig & Record<string, unknown>;
  readonly plugin: AlgorithmPlugin;
  /** The registry the plug-in came from (the config's sections). */
  readonly registry: AlgorithmRegistry;
  /** The tensor backend this process computes on. */
  readonly backend: string;
  readonly policy: Policy;
  readonly scorer: RunScorer;
  readonly task: TrainingTask;
  /** Renders a question as the Layer-1 prompt. */
  readonly render: (question: string) => string;
  /** The held-out problems the model's context can take. */
  readonly evalSet: SourceProblem[];
  /** Their first-answer queries, prompts held to `prompts.max_prompt_tokens` (`fittedQuery`). */
  readonly evalQueries: Query[];
  readonly resume: ResumePoint | undefined;
  /** One `Restore` per actor snapshot of the resumed checkpoint. */
  readonly restores: Map<string, Restore>;
  /** The resumed checkpoint holds actor snapshots (exact resume). */
  readonly exact: boolean;
  /** The reference policy's identity (KL is measured to the same weights after a resume). */
  readonly reference: { init: string; sha256: string } | undefined;
  /** AdamW's state of the resumed checkpoint. */
  readonly optimizer: AdamWState | undefined;
}

/**
 * Prepares a run from a validated config: the scorer and the dataset first (a bad reward
 * module or dataset line leaves no run folder), then the backend, the policy, the reference
 * policy and the held-out set.
 *
 * @throws {Error} When a resumed checkpoint does not fit the reference policy.
 */
export async function setupRun(
  initial: TrainConfig & Record<string, unknown>,
  options: SetupOptions,
): Promise<RunSetup> {
  let config = initial;
  const warn = options.warn ?? ((line: string) => console.error(line));
  const log = options.log ?? ((line: string) => console.log(line));
  const write = options.write ?? true;
  const { runDir } = options;
  const resumeFrom = options.resume?.checkpoint;
  const saved = options.resume?.saved ?? {};
  const registry = options.registry ?? builtinAlgorithms();
  const plugin = registry.get(config.algorithm);
  // A folder holding another run is refused before anything is loaded.
  if (write && options.claim && !options.resume) await checkRunDir(runDir, options.claim);
  // Reward modules are imported before anything is written, so a bad path leaves no run dir.
  const scorer = await buildScorer(config, {
    configPath: options.configPath ?? "configs/tiny-mgrpo.yaml",
  });
  try {
    // The dataset is read before anything is written: a malformed line leaves no run dir.
    const task = await loadTrainingTask(config.task, config.eval.split);
    for (const bad of task.badLines.slice(0, 5)) warn(`skipped: ${bad.message}`);
    if (task.badLines.length > 5) {
      warn(`skipped: ... ${task.badLines.length - 5} more bad lines`);
    }
    // The config as given is what the run folder keeps (a chat template found below is not).
    const given = config;

    // The Learner's backend (learner.backend, else model.backend) is this process's; the
    // config refuses a different in-process sampler.backend.
    const backend = await initBackend(options.backend ?? tensorBackends(config).learner, {
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
          : await weightsSha256(resolveModelDir(config.model.init)),
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
    // Checkpoints written before exact resume hold no actor snapshots: those runs go on with
    // a fresh sampling stream, as they always did.
    const restores = resumeFrom ? await restoreMessages(resumeFrom, saved) : new Map();
    const exact = resumeFrom !== undefined && saved.actors !== undefined;
    let optimizer: AdamWState | undefined;
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
      // A Hugging Face model is prompted with its own chat template (unless the config sets
      // one).
      const folder = resolveModelDir(config.model.init);
      const template = await loadChatTemplate(folder).catch(() => undefined);
      if (template) {
        config = {
          ...config,
          prompts: { ...config.prompts, template: selfContainedTemplate(template) },
        };
        log(`prompts: the chat template of ${template.source}`);
      }
    }
    const render = promptRenderer(config.prompts);
    // Held-out problems whose prompt the model cannot take (not encodable, or longer than
    // prompts.max_prompt_tokens with on_long_prompt: reject) are left out of the evaluation;
    // with truncate the evaluation keeps their last tokens, as training does.
    const maxPrompt = config.prompts.max_prompt_tokens ||
      init.model.config.max_position_embeddings - 1;
    const fit = {
      tokenizer,
      renderPrompt: render,
      maxPromptTokens: maxPrompt,
      onLongPrompt: config.prompts.on_long_prompt,
    };
    const evalSet: SourceProblem[] = [];
    const evalQueries: Query[] = [];
    let cut = 0;
    for (const p of task.evalSet) {
      const fitted = fittedQuery(p, fit);
      if (!fitted) continue;
      if (fitted.truncated) cut++;
      evalSet.push(p);
      evalQueries.push(fitted.query);
    }
    if (cut > 0) {
      warn(
        `eval: ${cut} held-out prompts cut to their last ${maxPrompt} tokens (prompts.on_long_prompt: truncate)`,
      );
    }
    if (evalSet.length < task.evalSet.length) {
      warn(
        `eval: ${
          task.evalSet.length - evalSet.length
        } held-out problems left out: prompt longer than ${maxPrompt} tokens ` +
          `(prompts.max_prompt_tokens, on_long_prompt: reject) or not encodable`,
      );
    }
    // Everything that can be checked was: only now is the run folder written, so a failed
    // start leaves no folder and never rewrites a resumed run's config.yaml.
    if (write) {
      if (given.control.enabled) {
        await probeListen(
          options.configPath ?? "configs/tiny-mgrpo.yaml",
          given.control.host,
          given.control.port,
        );
      }
      if (options.claim && !options.resume) {
        const aside = await claimRunDir(runDir, options.claim);
        if (aside) warn(`run dir: the run that was in ${runDir} was moved to ${aside}`);
      }
      await Deno.mkdir(runDir, { recursive: true });
      await writeFileAtomic(`${runDir}/config.yaml`, configToYaml(given));
    }
    if (resumeFrom && write) {
      const dropped = await truncateMetrics(`${runDir}/metrics.jsonl`, startStep);
      log(
        `resume: ${resumeFrom} (step ${startStep}${
          exact ? "" : "; written before exact resume: sampling restarts from a new stream"
        }${dropped ? `; dropped ${dropped} metrics lines logged after it` : ""})`,
      );
    }
    return {
      config,
      plugin,
      registry,
      backend,
      policy: { model: init.model, samplerModel, refModel, tokenizer, startStep, version },
      scorer,
      task,
      render,
      evalSet,
      evalQueries,
      resume: options.resume,
      restores,
      exact,
      reference,
      optimizer,
    };
  } catch (e) {
    await scorer.close();
    throw e;
  }
}

/**
 * Checks that the control server will be able to listen on `host:port` (an address that
 * does not resolve, or a port taken), before the run folder is written. Without the net
 * permission the control server is skipped later with a warning, so nothing is checked.
 *
 * @throws {ConfigError} Naming `control.host` or `control.port`.
 */
async function probeListen(configPath: string, host: string, port: number): Promise<void> {
  const permission = await Deno.permissions.query({ name: "net", host });
  if (permission.state !== "granted") return;
  try {
    Deno.listen({ hostname: host, port }).close();
  } catch (cause) {
    const field = cause instanceof Deno.errors.AddrInUse ? "control.port" : "control.host";
    const value = field === "control.port" ? port : JSON.stringify(host);
    throw new ConfigError(configPath, [{
      field,
      message: `field "${field}" cannot be listened on: ${
        (cause as Error).message
      }: current value is ${value}`,
    }], { cause });
  }
}

/** Writes `text` to `path` through a temporary file and a rename: never half a file. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Options of {@linkcode buildGraphInput}. */
export interface GraphInputOptions {
  /** The run folder (the Learner's checkpoints go there). */
  readonly runDir: string;
  /** The Verifier's scorer. */
  readonly scorer: RunScorer;
  /** The task's problems and the held-out keys training excludes. */
  readonly task: Pick<TrainingTask, "keys" | "dataset">;
  /** Renders a question as the Layer-1 prompt. */
  readonly render: (question: string) => string;
  /** The resumed run's trainer state and optimizer. @default a new run */
  readonly resume?: {
    readonly saved: TrainerState;
    readonly optimizer: AdamWState | undefined;
    readonly exact: boolean;
  };
  /** Actors placed in a Worker or on NATS: proxies that forward to them. @default {} */
  readonly placement?: Record<string, Placement>;
  /** Told when an actor fails. @default undefined */
  readonly onFailure?: (report: ActorFailed) => void;
}

/**
 * The actors' inputs of a run's graph (what an algorithm plug-in's `buildGraph` takes), from
 * the config and the policy: every config field an actor needs, in one place.
 */
export function buildGraphInput(
  config: TrainConfig & Record<string, unknown>,
  policy: Policy,
  options: GraphInputOptions,
): AlgorithmGraphInput {
  const { tokenizer, startStep, version, refModel } = policy;
  const resume = options.resume;
  const saved = resume?.saved ?? {};
  const optimizer = resume?.optimizer;
  return {
    config,
    mailboxCapacity: config.runtime.mailbox_capacity,
    score: options.scorer.score,
    promptSource: {
      tokenizer,
      renderPrompt: options.render,
      task: arithmeticOptions(config.task),
      exclude: options.task.keys,
      seed: config.run.seed,
      promptsPerStep: config.sampler.prompts_per_step,
      numGenerations: config.grpo.num_generations,
      cursor: startStep * config.sampler.prompts_per_step,
      ...(options.task.dataset ? { dataset: options.task.dataset } : {}),
      maxPromptTokens: config.prompts.max_prompt_tokens ||
        policy.model.config.max_position_embeddings - 1,
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
      model: policy.samplerModel,
      tokenizer,
      seed: config.run.seed + (resume && !resume.exact ? startStep * 7919 : 0),
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
      model: policy.model,
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
      totalSteps: config.run.steps,
      maskTruncated: config.grpo.mask_truncated_completions,
      checkpointState: () => ({ seed: config.run.seed, init: config.model.init }),
      ...(resume
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
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    supervision: {
      maxRestarts: config.runtime.max_restarts,
      restartDelayMs: config.runtime.restart_delay_ms,
      faults: config.faults,
      exitWorker: () => {
        if (!options.scorer.killWorker) {
          throw new Error(
            'Cannot inject "exit_worker": the answer checker runs no worker pool ' +
              "(set reward.checker: math)",
          );
        }
        options.scorer.killWorker();
      },
      placement: options.placement ?? {},
    },
  };
}

/**
 * The Sampler's OpenAI-compatible backend of `sampler.openai` (`sampler.backend: openai`). The
 * server is taken to serve `model.init` (version 0): a resumed run pushes its policy first.
 */
function openAiSampler(config: TrainConfig): OpenAiSampler {
  const o = config.sampler.openai;
  // The key of a server started with MGRPO_API_KEY reaches it from the same environment.
  const apiKey = o.api_key ?? (Deno.env.get("MGRPO_API_KEY") || undefined);
  return new OpenAiSampler({
    baseUrl: o.base_url!,
    model: o.model,
    ...(apiKey === undefined ? {} : { apiKey }),
    maxConcurrency: o.max_concurrency,
    maxRetries: o.max_retries,
    timeoutS: o.timeout_s,
    weightSync: o.weight_sync,
    syncDir: o.sync_dir,
    loraName: o.lora_name,
    reloadPath: o.reload_path,
  });
}

/**
 * {@linkcode buildGraphInput} of a prepared run: its config, policy, scorer, task, renderer and
 * resumed state, with `options` (the run folder, placement, failure report). The Trainer and a
 * host of one actor (`cli/actor.ts`) build their graphs from this.
 */
export function setupGraphInput(
  setup: RunSetup,
  options: Pick<GraphInputOptions, "runDir" | "placement" | "onFailure">,
): AlgorithmGraphInput {
  return buildGraphInput(setup.config, setup.policy, {
    ...options,
    scorer: setup.scorer,
    task: setup.task,
    render: setup.render,
    ...(setup.resume
      ? { resume: { saved: setup.resume.saved, optimizer: setup.optimizer, exact: setup.exact } }
      : {}),
  });
}

/** Frees the models a run loaded (the policy, the Sampler's copy, the reference). */
export function disposePolicy(policy: Policy): void {
  for (const m of new Set([policy.model, policy.samplerModel, policy.refModel])) m?.dispose();
}
