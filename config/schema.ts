/**
 * The training config: one zod schema per YAML section, every field described
 * (with the paper's or TRL's symbol where there is one) and defaulted, every
 * object strict so a misspelt field is an error rather than silently ignored.
 *
 * The algorithms' sections are not here: each algorithm (built-in or plug-in) brings its own
 * schema, and {@linkcode configSchema} places the registered ones between `plugins` and
 * `reward`, so this module knows no algorithm. `configs/tiny-mgrpo.yaml` spells out the
 * defaults; `loadConfigWith()` in `config/load.ts` reads a YAML file against a schema.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FaultsSchema } from "../actors/runtime/faults.ts";

/** Where the embedded default config lives, as a URL relative to this module. */
export const DEFAULT_CONFIG_URL: URL = new URL("../configs/tiny-mgrpo.yaml", import.meta.url);

/**
 * File path of the embedded default config (`configs/tiny-mgrpo.yaml` under the
 * repository root), usable with `Deno.readTextFile` and `loadConfig()`.
 */
export const DEFAULT_CONFIG_PATH: string = DEFAULT_CONFIG_URL.protocol === "file:"
  ? fileURLToPath(DEFAULT_CONFIG_URL)
  : DEFAULT_CONFIG_URL.href;

/**
 * The default Layer-1 system prompt: none. The embedded model's context is short (every
 * prompt token costs training time on 2 cores) and it learns the format from its warm-up;
 * `"table1"` selects the paper's Table 1 system prompt, for real models.
 */
export const DEFAULT_SYSTEM_PROMPT = "";

/** The `run` section: naming, seeding, length and checkpointing of a run. */
export const RunConfigSchema = z.object({
  name: z.string().min(1).default("tiny-mgrpo").describe(
    "Run name: the run is written to a fresh <dir>/<name>-<YYYYMMDD-HHMMSS>, and <dir>/<name> links to the newest one",
  ),
  dir: z.string().min(1).default("runs").describe(
    "Folder that holds the runs (relative to the working directory or absolute)",
  ),
  seed: z.number().int().min(0).default(0).describe(
    "Random seed for prompts, sampling and initialisation",
  ),
  steps: z.number().int().min(1).default(16).describe(
    "Number of training steps (policy updates)",
  ),
  max_sampled_tokens: z.number().int().min(0).default(0).describe(
    "Stop after the step at which the completion tokens sampled for training (both MGRPO layers) reach this budget; 0 = no budget (deno task compare uses it to compare algorithms at equal sampled tokens)",
  ),
  checkpoint_every: z.number().int().min(0).default(0).describe(
    "Save a checkpoint every this many steps; 0 saves only at the end",
  ),
  keep_last: z.number().int().min(1).default(2).describe(
    "Number of most recent checkpoints kept on disk",
  ),
  log_every: z.number().int().min(1).default(1).describe(
    "Print and record metrics every this many steps",
  ),
  report_to: z.array(z.enum(["tensorboard"])).default([]).describe(
    "Where metrics go besides metrics.jsonl, as TRL's report_to: tensorboard = event files in <run dir>/tb/ (every metrics.jsonl key a scalar, sample completions as text), written as the run goes",
  ),
}).strict();

/** Tensor backends a run can ask for; `auto` picks the fastest one available. */
export const BACKENDS = ["auto", "wasm", "cpu", "webgpu", "tensorflow"] as const;

/** One of {@link BACKENDS}. */
export type Backend = (typeof BACKENDS)[number];

/** The `model` section: which checkpoint to start from and where to run it. */
export const ModelConfigSchema = z.object({
  init: z.string().min(1).default("checkpoints/tiny-sft").describe(
    "Warm-start model: a folder (relative to the repository root, or absolute) holding ours or a Hugging Face model (Qwen2, Llama), or a Hugging Face id such as Qwen/Qwen2.5-0.5B-Instruct[@revision] found in the local hub cache",
  ),
  path: z.string().min(1).optional().describe(
    "A Hugging Face model to start from: a folder (config.json, *.safetensors, tokenizer.json) or an id such as Qwen/Qwen2.5-0.5B-Instruct[@revision] in the local hub cache (HF_HUB_CACHE, HF_HOME); takes the place of init",
  ),
  lora: z.object({
    r: z.number().int().min(0).default(0).describe(
      "LoRA rank: > 0 trains low-rank adapters on the projections with the base weights frozen; 0 = full fine-tuning",
    ),
    alpha: z.number().positive().default(16).describe("LoRA α: the update is scaled by α/r"),
    target_modules: z.array(
      z.enum(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    ).min(1).default(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
      .describe("Projections that get adapters"),
  }).strict().prefault({}).describe(
    "Low-rank adapters (checkpoints then hold a PEFT adapter beside the base weights)",
  ),
  preset: z.enum(["tiny"]).optional().describe(
    "Start from a random model instead of a folder: tiny = the embedded architecture with the character tokenizer, seeded by run.seed",
  ),
  backend: z.enum(BACKENDS).default("wasm").describe(
    "TensorFlow.js backend: auto (the fastest available: tensorflow, webgpu on a real GPU, wasm, cpu), wasm, cpu, webgpu or tensorflow (tfjs-node); learner.backend and sampler.backend override it per actor",
  ),
  wasm_threads: z.number().int().min(0).default(0).describe(
    "Threads of the wasm backend (XNNPACK): 0 = one per core, or tfjs' single-threaded build when other processes already keep the cores busy (measured from /proc/stat over 200 ms at start); 1 = the single-threaded build; above 1 runs tfjs' threaded build through a shim of its internals (model/wasm_threads.ts), with bit-identical results",
  ),
}).strict().refine((m) => m.path === undefined || m.preset === undefined, {
  path: ["preset"],
  error: "cannot be given with model.path: a run starts from one of them",
}).transform(({ path, ...rest }) => (path === undefined ? rest : { ...rest, init: path }));

/** The `task` section: the synthetic multi-step arithmetic task, or a JSONL dataset. */
export const TaskConfigSchema = z.object({
  kind: z.enum(["arithmetic", "jsonl", "parquet", "hf"]).default("arithmetic").describe(
    "Training problems: synthetic multi-step arithmetic; a JSONL file of {question, answer} (path); a Parquet file or folder of them (path); or a Hugging Face dataset (path: an id such as openai/gsm8k from the local hub cache, or a save_to_disk folder; split, subset)",
  ),
  path: z.string().min(1).optional().describe(
    "The dataset (kind jsonl, parquet: a file, or a folder of .parquet files; kind hf: a dataset id or a save_to_disk folder), relative to the working directory",
  ),
  split: z.string().min(1).default("train").describe(
    "kind: hf: the split to train on",
  ),
  subset: z.string().min(1).optional().describe(
    "kind: hf: the subset (the hub's config name, e.g. main for openai/gsm8k) when the dataset has several",
  ),
  on_bad_line: z.enum(["stop", "skip"]).default("stop").describe(
    "A malformed line or record stops the run naming file:line (or row), or is skipped and counted in summary.json",
  ),
  question_field: z.string().min(1).optional().describe(
    'The field holding the question (default "question", else "problem")',
  ),
  answer_field: z.string().min(1).default("answer").describe(
    "The field holding the reference answer",
  ),
  answer_marker: z.string().min(1).optional().describe(
    'The answer field holds a worked solution ending in this marker and the answer, as GSM8K\'s "... #### 72": the answer is the text after the last marker, thousands separators taken out',
  ),
  min_steps: z.number().int().min(1).default(2).describe(
    "Fewest arithmetic operations in a problem",
  ),
  max_steps: z.number().int().min(1).default(2).describe(
    "Most arithmetic operations in a problem (>= min_steps)",
  ),
  max_operand: z.number().int().min(2).default(9).describe(
    "Largest operand drawn for a problem",
  ),
  eval_size: z.number().int().min(1).default(200).describe(
    "Held-out problems train evaluates before and after (and every eval.every steps): the first eval_size of the held-out set (a dataset: the held-out split itself)",
  ),
  heldout_size: z.number().int().min(1).default(1000).describe(
    "kind: arithmetic: problems in the held-out set that deno task eval and compare report on; all of them are kept out of training (>= eval_size)",
  ),
  dev_unseen_size: z.number().int().min(0).default(0).describe(
    "kind: arithmetic: problems of the unseen dev split (eval.split / --split dev_unseen), drawn like the held-out set and, like it, kept out of training and SFT: design choices on math the policy never saw, without looking at the held-out set; 0 = none (the same training problems as without the field)",
  ),
}).strict().refine((task) => task.max_steps >= task.min_steps, {
  path: ["max_steps"],
  error: (issue) => {
    const task = issue.input as { min_steps: number };
    return `must be >= task.min_steps (${task.min_steps})`;
  },
}).refine((task) => task.heldout_size >= task.eval_size, {
  path: ["heldout_size"],
  error: (issue) => {
    const task = issue.input as { eval_size: number };
    return `must be >= task.eval_size (${task.eval_size})`;
  },
}).refine((task) => task.kind === "arithmetic" || task.path !== undefined, {
  path: ["path"],
  error: (issue) => `is required when task.kind is ${(issue.input as { kind: string }).kind}`,
});

/** The `prompts` section: system prompt and chat template. */
export const PromptsConfigSchema = z.object({
  system: z.string().default(DEFAULT_SYSTEM_PROMPT).describe(
    'Layer-1 system prompt put before every question: "" = no system turn, "table1" = the paper\'s Table 1 prompt, anything else is used as written',
  ),
  template: z.string().optional().describe(
    "Jinja chat template (Hugging Face style); absent means ChatML",
  ),
  max_prompt_tokens: z.number().int().min(0).default(0).describe(
    "Longest prompt in tokens, in training and evaluation alike; 0 = the model's context minus one",
  ),
  on_long_prompt: z.enum(["reject", "truncate"]).default("reject").describe(
    "A longer prompt (or one the tokenizer cannot encode) is rejected — training draws another problem, train's evaluation leaves it out, deno task eval scores it wrong — or cut to its last max_prompt_tokens tokens; both are counted",
  ),
}).strict();

/** Values of `sampler.backend`: the tensor backends, or an OpenAI-compatible server. */
export const SAMPLER_BACKENDS = [...BACKENDS, "openai"] as const;

/** `sampler.openai`: the server that `sampler.backend: openai` samples from. */
export const OpenAiSamplerConfigSchema = z.object({
  base_url: z.string().url().optional().describe(
    "Server URL, with or without /v1 (e.g. http://127.0.0.1:8000/v1); required for backend openai",
  ),
  model: z.string().min(1).default("default").describe(
    "Model name of requests: the served base model (vLLM's --served-model-name)",
  ),
  api_key: z.string().min(1).optional().describe(
    "Sent as Authorization: Bearer <api_key> with every request, weight syncs included; default $MGRPO_API_KEY, else none",
  ),
  max_concurrency: z.number().int().min(1).default(8).describe(
    "Most requests in flight at once (one request per prompt, n completions each)",
  ),
  max_retries: z.number().int().min(0).default(4).describe(
    "Retries after a 429, 5xx, timeout or network error, with exponential backoff from 250 ms",
  ),
  timeout_s: z.number().positive().default(120).describe("Limit of one attempt, in seconds"),
  weight_sync: z.enum(["lora", "checkpoint", "none"]).default("none").describe(
    "How new weights reach the server after each update: lora = write the adapter and POST /v1/load_lora_adapter (needs model.lora.r > 0; vLLM: --enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), checkpoint = save a checkpoint and POST {model_path} to reload_path, none = never (rollouts keep the server's version)",
  ),
  sync_dir: z.string().min(1).default("runs/sync").describe(
    "Folder the adapters or checkpoints are written to; the server must read it at the same path",
  ),
  lora_name: z.string().min(1).default("mgrpo-policy").describe(
    "Adapters are loaded as <lora_name>-v<version> and requests then name that model",
  ),
  reload_path: z.string().min(1).default("/v1/reload_checkpoint").describe(
    "Endpoint (from the server's root) that weight_sync: checkpoint POSTs {model_path} to; SGLang: /update_weights_from_disk",
  ),
}).strict();

/** The `sampler` section: how rollouts are generated. */
export const SamplerConfigSchema = z.object({
  prompts_per_step: z.number().int().min(1).default(8).describe(
    "B: prompts sampled per step (each gets G = grpo.num_generations completions)",
  ),
  temperature: z.number().gt(0).default(1.0).describe(
    "τ: sampling temperature",
  ),
  top_p: z.number().gt(0).max(1).default(1.0).describe(
    "Nucleus sampling: keep the smallest token set with probability mass >= top_p; 1 is off",
  ),
  top_k: z.number().int().min(0).default(0).describe(
    "Keep only the top_k most likely tokens; 0 is off",
  ),
  max_new_tokens: z.number().int().min(1).default(48).describe(
    "T_max: most tokens generated per completion (TRL max_completion_length)",
  ),
  share_weights: z.boolean().default(false).describe(
    "The Sampler samples from the Learner's own weights instead of a copy (one copy of the model in memory, for models near the wasm backend's 4 GB; in-process only)",
  ),
  max_staleness: z.number().int().min(0).default(0).describe(
    "Policy versions the Sampler's weights may lag behind the step it samples for; 0 = on-policy (a training Generate for step s needs version s - 1)",
  ),
  backend: z.enum(SAMPLER_BACKENDS).optional().describe(
    "Where rollouts are sampled: a TensorFlow.js backend (auto, wasm, cpu, webgpu, tensorflow), or openai = an OpenAI-compatible server (vLLM, SGLang, deno task serve; see sampler.openai); absent = model.backend",
  ),
  openai: OpenAiSamplerConfigSchema.prefault({}).describe(
    "The OpenAI-compatible server of sampler.backend: openai",
  ),
}).strict().refine((s) => s.backend !== "openai" || s.openai.base_url !== undefined, {
  path: ["openai", "base_url"],
  error: "is required when sampler.backend is openai",
});

/** Learning-rate schedules the learner supports. */
export const LR_SCHEDULES = ["cosine", "linear", "constant"] as const;

/** The `learner` section: optimiser, schedule and batching of the policy update. */
export const LearnerConfigSchema = z.object({
  lr: z.number().gt(0).default(1e-4).describe(
    "η: peak learning rate of Adam(W)",
  ),
  lr_schedule: z.enum(LR_SCHEDULES).default("cosine").describe(
    "Decay after warm-up: cosine, linear or constant",
  ),
  warmup_ratio: z.number().min(0).lt(1).default(0.05).describe(
    "Fraction of run.steps spent in linear warm-up from 0 to lr (TRL warmup_ratio)",
  ),
  min_lr_ratio: z.number().min(0).max(1).default(0).describe(
    "Floor of the decay as a fraction of lr: the schedule ends at lr * min_lr_ratio",
  ),
  weight_decay: z.number().min(0).default(0).describe(
    "λ: decoupled weight decay (AdamW); 0 is plain Adam",
  ),
  adam_beta1: z.number().min(0).lt(1).default(0.9).describe(
    "β1: Adam first-moment decay",
  ),
  adam_beta2: z.number().min(0).lt(1).default(0.999).describe(
    "β2: Adam second-moment decay",
  ),
  adam_eps: z.number().gt(0).default(1e-8).describe(
    "Adam denominator epsilon (not the clip range grpo.epsilon)",
  ),
  max_consecutive_skips: z.number().int().min(0).default(5).describe(
    "Stop the run after this many optimizer updates in a row were skipped for a non-finite gradient (each skip is logged with the tensors' names); 0 = never",
  ),
  max_grad_norm: z.number().min(0).default(1.0).describe(
    "Clip the global gradient norm to this value; 0 is no clipping",
  ),
  micro_batch_size: z.number().int().min(1).default(64).describe(
    "Sequences per forward/backward pass; gradients accumulate over the step",
  ),
  gradient_checkpointing: z.boolean().default(false).describe(
    "Recompute each layer's activations in the backward instead of keeping them (TRL gradient_checkpointing): activation memory drops to one [B·T, D] tensor per layer, for one more forward per step; same results",
  ),
  backend: z.enum(BACKENDS).optional().describe(
    "TensorFlow.js backend of the Learner (and the actors in its process): auto, wasm, cpu, webgpu or tensorflow (tfjs-node); absent = model.backend",
  ),
}).strict();

/** The problems `eval.split` (and `deno task eval --split`) can name. */
export const EVAL_SPLITS = ["heldout", "dev", "dev_unseen"] as const;

/** One of {@linkcode EVAL_SPLITS}. */
export type EvalSplit = (typeof EVAL_SPLITS)[number];

/** The `eval` section: accuracy on the held-out set before and after training. */
export const EvalConfigSchema = z.object({
  before: z.boolean().default(true).describe("Evaluate the initial policy before training"),
  after: z.boolean().default(true).describe("Evaluate the final policy after training"),
  greedy: z.boolean().default(true).describe(
    "Decode greedily (argmax); when false sample with eval.temperature",
  ),
  temperature: z.number().gt(0).default(1.0).describe(
    "τ: sampling temperature, used when greedy is false",
  ),
  max_new_tokens: z.number().int().min(1).default(48).describe(
    "Most tokens generated per evaluation answer",
  ),
  batch_size: z.number().int().min(1).default(100).describe(
    "Problems decoded together in one evaluation batch",
  ),
  every: z.number().int().min(0).default(0).describe(
    "Also evaluate every N training steps; 0 = only before and after",
  ),
  split: z.enum(EVAL_SPLITS).default("heldout").describe(
    'Problems train evaluates (task.eval_size of them): "heldout", the held-out set; "dev", the dev split drawn like training problems; "dev_unseen", the unseen dev split (task.dev_unseen_size > 0): both for choosing settings without looking at the held-out set (task.kind: arithmetic)',
  ),
  correction: z.union([z.literal("auto"), z.boolean()], { error: `must be "auto", true or false` })
    .default("auto").describe(
      'Also evaluate one guided correction of each first answer, as deno task eval --two-turn --rounds 1 does (Layer-2 query and guide phrases of the mgrpo section): logs eval/acc_t2, eval/delta_i_to_c, eval/delta_c_to_i, eval/mcnemar_p; "auto" = on for MGRPO',
    ),
}).strict();

/** One weighted reward function of the `reward` section. */
export const RewardFunctionConfigSchema = z.object({
  name: z.string().min(1).describe(
    "Reward function: a built-in (correct, format), one registered in TypeScript, or the metric name of one loaded from path",
  ),
  weight: z.number().finite().default(1.0).describe("Its weight in the summed reward"),
  path: z.string().min(1).optional().describe(
    "Module that exports the function (relative to the working directory); leave out for built-ins and registered functions",
  ),
  export: z.string().min(1).optional().describe(
    "Name of the export in that module; default: the name",
  ),
}).strict();

/** The `reward` section: the answer checker and the reward functions the Verifier runs. */
export const RewardConfigSchema = z.object({
  checker: z.enum(["integer", "math"]).default("integer").describe(
    "Answer checker that decides correctness (accuracy, MGRPO outcomes, the correct reward): integer = exact integer after </think>; math = the math verifier (LaTeX equivalence, run in Workers with a time limit)",
  ),
  timeout_ms: z.number().int().min(1).default(1000).describe(
    "math checker: wall-clock limit per verification; a timeout scores as wrong",
  ),
  workers: z.number().int().min(1).default(2).describe(
    "math checker: Workers that verify in parallel",
  ),
  functions: z.array(RewardFunctionConfigSchema).min(1).default([{ name: "correct", weight: 1 }])
    .describe(
      "Reward functions summed with their weights into the reward (TRL's reward_funcs and reward_weights)",
    ),
}).strict();

/** The `control` section: the HTTP control server that `deno task train` starts. */
export const ControlConfigSchema = z.object({
  enabled: z.boolean().default(true).describe(
    "Start the control server and dashboard beside the run",
  ),
  host: z.string().min(1).default("127.0.0.1").describe(
    "Address to bind; off loopback, reads need the bearer token too",
  ),
  port: z.number().int().min(0).max(65535).default(0).describe(
    "Port to listen on; 0 = a free one (the URL is printed and written to control.json)",
  ),
  allowed_hosts: z.array(z.string().min(1)).default([]).describe(
    "Host names (or addresses) accepted in requests' Host and Origin headers besides loopback and control.host, e.g. the machine's name when binding 0.0.0.0; \"*\" accepts any (no DNS-rebinding protection)",
  ),
}).strict();

/**
 * Actors whose state a restart would lose (their `init` cannot rebuild it): a restart there
 * would silently change the run, so `runtime.max_restarts` refuses them.
 */
const UNRESTARTABLE: Record<string, string> = {
  learner:
    "cannot restart the learner: its optimizer moments would be lost; resume from a checkpoint instead",
  corrector:
    "cannot restart the corrector: the Layer-1 batches waiting for corrections would be lost",
  critic: "cannot restart the critic: its value head and optimizer would be lost",
};

/** The `runtime` section: how the actor graph runs. */
export const RuntimeConfigSchema = z.object({
  mailbox_capacity: z.number().int().min(1).default(2).describe(
    "Messages an actor's mailbox holds before senders wait (backpressure)",
  ),
  max_restarts: z.record(z.string(), z.number().int().min(0)).default({}).superRefine(
    (value, ctx) => {
      for (const name of Object.keys(value)) {
        const why = UNRESTARTABLE[name];
        if (why) ctx.addIssue({ code: "custom", path: [name], message: why });
      }
    },
  ).describe(
    "Restarts allowed per actor (prompt_source, sampler, verifier, ref_policy); a restarted actor gets the failed message again, so no rollout is lost or counted twice",
  ),
  restart_delay_ms: z.number().int().min(0).default(0).describe(
    "Wait before each restart, in milliseconds",
  ),
}).strict();

/** Where an actor of the graph runs (`placement`). */
export const PLACEMENTS = ["inprocess", "worker", "nats"] as const;

/** Every actor name of the built-in graphs, for `placement` (the graph checks its own). */
const ACTOR_NAMES = [
  "prompt_source",
  "sampler",
  "verifier",
  "corrector",
  "ref_policy",
  "critic",
  "learner",
];

/** The `placement` section: actor name → where it runs. */
export const PlacementConfigSchema = z.record(z.string(), z.enum(PLACEMENTS)).superRefine(
  (value, ctx) => {
    for (const name of Object.keys(value)) {
      if (!ACTOR_NAMES.includes(name)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `names no actor: current value is "${name}": known actors are ${
            ACTOR_NAMES.map((n) => `"${n}"`).join(", ")
          }`,
        });
      }
    }
  },
);

/**
 * The nats-server address of a config: `nats.url`, else the `NATS_URL` environment variable,
 * else the local server's default address.
 */
export function natsUrl(config: { nats: { url: string } }): string {
  if (config.nats.url !== "") return config.nats.url;
  try {
    return Deno.env.get("NATS_URL") || "nats://127.0.0.1:4222";
  } catch {
    return "nats://127.0.0.1:4222"; // no --allow-env
  }
}

/** The `nats` section: the message system of `placement: { <actor>: nats }`. */
export const NatsConfigSchema = z.object({
  url: z.string().default("").describe(
    'Address of the nats-server (with JetStream, -js) that actors placed on nats talk through; "" = the NATS_URL environment variable, else nats://127.0.0.1:4222',
  ),
  durable: z.boolean().default(false).describe(
    "Carry the rollout stream (Sampler → Verifier) through JetStream, so the server keeps it until it is delivered",
  ),
}).strict();

/** One algorithm's YAML section: its schema (every field defaulted) and its description. */
export interface ConfigSection {
  /** The section's zod object schema. */
  readonly schema: z.ZodType;
  /** One line for the section, shown with its fields. @default "The <name> algorithm" */
  readonly description?: string;
}

/** The sections before the algorithms' ones. */
const HEAD_SHAPE = {
  run: RunConfigSchema.prefault({}).describe("Run naming, length and checkpoints"),
  model: ModelConfigSchema.prefault({}).describe("Warm-start checkpoint and tensor backend"),
  task: TaskConfigSchema.prefault({}).describe("Synthetic arithmetic task"),
  prompts: PromptsConfigSchema.prefault({}).describe("System prompt and chat template"),
};

const ALGORITHM_DESCRIPTION =
  "RL algorithm whose graph and loss the run uses: grpo, mgrpo, ppo, or one from plugins";

const PLUGINS = z.array(z.string().min(1)).default([]).describe(
  "Algorithm modules to load (paths relative to the working directory), each exporting `algorithm`, an AlgorithmPlugin whose section is named after it",
);

/** The sections after the algorithms' ones. */
const TAIL_SHAPE = {
  reward: RewardConfigSchema.prefault({}).describe(
    "Answer checker and weighted reward functions of the Verifier",
  ),
  sampler: SamplerConfigSchema.prefault({}).describe("Rollout generation"),
  learner: LearnerConfigSchema.prefault({}).describe("Optimiser, schedule and batching"),
  eval: EvalConfigSchema.prefault({}).describe("Held-out evaluation"),
  runtime: RuntimeConfigSchema.prefault({}).describe("Actor runtime"),
  control: ControlConfigSchema.prefault({}).describe("HTTP control server and dashboard"),
  placement: PlacementConfigSchema.default({}).describe(
    "Where each actor runs, by name: inprocess (default), worker (a Web Worker of this process) or nats (a process of its own, through nats-server), e.g. { sampler: worker }",
  ),
  nats: NatsConfigSchema.prefault({}).describe(
    "The NATS server of actors placed on nats",
  ),
  faults: FaultsSchema.describe(
    "Injected faults, for tests of supervision: throw in actor X at step N, delay a message, kill a verifier worker",
  ),
};

/** One process (or Worker) has one tfjs backend: two actors that share it share it. */
function checkBackends(
  config: z.infer<z.ZodObject<typeof TAIL_SHAPE & typeof HEAD_SHAPE>>,
  ctx: z.RefinementCtx,
): void {
  const { learner, sampler } = tensorBackends(config);
  const together = (config.placement.learner ?? "inprocess") === "inprocess" &&
    (config.placement.sampler ?? "inprocess") === "inprocess";
  if (sampler === undefined || sampler === learner || !together) return;
  const field = config.sampler.backend === undefined ? "learner" : "sampler";
  const other = field === "learner" ? "sampler" : "learner";
  ctx.addIssue({
    code: "custom",
    path: [field, "backend"],
    input: field === "learner" ? learner : sampler,
    message: `differs from ${other}.backend (${
      JSON.stringify(field === "learner" ? sampler : learner)
    }), but both actors run in this process, which has one tensor backend: give learner.backend and sampler.backend the same value, or run the Sampler apart (placement: { sampler: worker })`,
  });
}

/** `eval.split: dev_unseen` evaluates problems that exist only when task.dev_unseen_size > 0. */
function checkEvalSplit(
  config: z.infer<z.ZodObject<typeof TAIL_SHAPE & typeof HEAD_SHAPE>>,
  ctx: z.RefinementCtx,
): void {
  if (config.eval.split !== "dev_unseen" || config.task.dev_unseen_size > 0) return;
  ctx.addIssue({
    code: "custom",
    path: ["eval", "split"],
    input: config.eval.split,
    message:
      "is dev_unseen, but task.dev_unseen_size is 0: set task.dev_unseen_size (the same value the policy was trained and warm-started with, so that the split's math was kept out of training)",
  });
}

function checkConfig(
  config: z.infer<z.ZodObject<typeof TAIL_SHAPE & typeof HEAD_SHAPE>>,
  ctx: z.RefinementCtx,
): void {
  checkBackends(config, ctx);
  checkEvalSplit(config, ctx);
}

/**
 * The training config without any algorithm's section: what every algorithm shares. Every
 * section may be left out (or left empty) in YAML and then takes its defaults; unknown
 * sections and fields are errors.
 *
 * @example Defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { BaseConfigSchema } from "./schema.ts";
 *
 * const config = BaseConfigSchema.parse({ learner: { lr: 3e-4 } });
 * assert.equal(config.learner.lr, 3e-4);
 * assert.equal(config.sampler.prompts_per_step, 8);
 * ```
 */
export const BaseConfigSchema = z.object({
  ...HEAD_SHAPE,
  algorithm: z.string().min(1).default("mgrpo").describe(ALGORITHM_DESCRIPTION),
  plugins: PLUGINS,
  ...TAIL_SHAPE,
}).strict().superRefine(checkConfig);

/** A validated config without algorithm sections, every default filled in. */
export type BaseConfig = z.infer<typeof BaseConfigSchema>;

/**
 * The whole config schema with the given algorithms' sections, in their order, between
 * `plugins` and `reward` (each defaulted when left out); `algorithm` may name any of them
 * (default `mgrpo` when registered, else the first).
 *
 * @example A plug-in's section
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { configSchema } from "./schema.ts";
 *
 * const schema = configSchema({ toy: { schema: z.object({ k: z.number().default(2) }).strict() } });
 * const config = schema.parse({}) as { algorithm: string; toy: { k: number } };
 * assert.equal(config.algorithm, "toy");
 * assert.equal(config.toy.k, 2);
 * assert.throws(() => schema.parse({ algorithm: "grpo" }));
 * ```
 */
export function configSchema(
  sections: Readonly<Record<string, ConfigSection>>,
): z.ZodObject {
  const names = Object.keys(sections);
  const algorithm = names.length === 0
    ? z.string().min(1).default("mgrpo")
    : z.enum(names as [string, ...string[]]).default(
      names.includes("mgrpo") ? "mgrpo" : names[0]!,
    );
  return z.object({
    ...HEAD_SHAPE,
    algorithm: algorithm.describe(ALGORITHM_DESCRIPTION),
    plugins: PLUGINS,
    ...Object.fromEntries(
      Object.entries(sections).map(([name, section]) => [
        name,
        (section.schema as z.ZodObject).prefault({}).describe(
          section.description ?? `The ${name} algorithm`,
        ),
      ]),
    ),
    ...TAIL_SHAPE,
  }).strict().superRefine(checkConfig as never) as unknown as z.ZodObject;
}

/**
 * The tensor backend each actor computes on: `learner.backend` and `sampler.backend`, each
 * defaulting to `model.backend`. The Sampler's is `undefined` when it samples from a server
 * (`sampler.backend: openai`), which needs none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BaseConfigSchema, tensorBackends } from "./schema.ts";
 *
 * const config = BaseConfigSchema.parse({ model: { backend: "cpu" } });
 * assert.deepEqual(tensorBackends(config), { learner: "cpu", sampler: "cpu" });
 * ```
 */
export function tensorBackends(
  config: {
    model: { backend: Backend };
    learner: { backend?: Backend | undefined };
    sampler: { backend?: (typeof SAMPLER_BACKENDS)[number] | undefined };
  },
): { learner: Backend; sampler: Backend | undefined } {
  const sampler = config.sampler.backend ?? config.model.backend;
  return {
    learner: config.learner.backend ?? config.model.backend,
    sampler: sampler === "openai" ? undefined : sampler,
  };
}

/** What a config file may contain (algorithm sections aside): every section and field optional. */
export type BaseConfigInput = z.input<typeof BaseConfigSchema>;

/**
 * The config fields every run lets change while it is live (`PATCH /config`): the learning
 * rate, the sampling temperature and nucleus, the evaluation and progress intervals. An
 * algorithm adds its own (`AlgorithmPlugin.liveFields`); anything else fixes shapes or files
 * when the run starts.
 */
export const SHARED_LIVE_FIELDS: readonly string[] = [
  "learner.lr",
  "sampler.temperature",
  "sampler.top_p",
  "eval.every",
  "run.log_every",
];

/**
 * The schema of every section a live field may belong to, by name: the shared sections and
 * the algorithms' (`sections`), each without its default wrapper.
 */
export function liveSectionSchemas(
  sections: Readonly<Record<string, ConfigSection>>,
): Record<string, z.ZodType> {
  const shared = { ...HEAD_SHAPE, ...TAIL_SHAPE } as Record<string, z.ZodType>;
  const out: Record<string, z.ZodType> = {};
  for (const [name, schema] of Object.entries(shared)) {
    const def = schema._zod.def as { innerType?: z.ZodType };
    out[name] = def.innerType ?? schema;
  }
  for (const [name, section] of Object.entries(sections)) out[name] = section.schema;
  return out;
}
