/**
 * Shared test helpers: a tiny random-init model (so tests never depend on the committed
 * warm-start checkpoint) and a recording {@link ActorContext} for calling actor logic
 * directly, without channels.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { ActorContext } from "../actors/runtime/mod.ts";
import type { LearnerInput } from "../actors/learner.ts";
import type { Query, Scored } from "../actors/messages.ts";
import { grpoAlgorithm, type GrpoConfig, GrpoConfigSchema } from "../algorithms/grpo/mod.ts";
import { Transformer } from "../model/transformer.ts";
import { Rng } from "../util/rng.ts";
import type { ModelConfig } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { saveCheckpoint } from "../model/checkpoint.ts";
import { saveHfModel } from "../model/hf.ts";
import { initBackend } from "../model/backend.ts";
import { completionLogprobs } from "../model/sampling.ts";
import { buildLayer1Prompt } from "../prompts/chat_template.ts";
import { verifyIntegerAnswer } from "../verifiers/integer_answer.ts";
import type { ControlEvent, RunControl } from "../server/run_control.ts";
import { TRAIN_RUN_ARGS } from "../cli/common.ts";

/** The repository root, with a trailing slash. */
export const REPO_ROOT: string = new URL("../", import.meta.url).pathname;

/**
 * A very small Qwen2-shaped architecture over the character vocabulary: hidden 16, one
 * layer, context 256 (long enough for the ChatML arithmetic prompts plus a completion).
 */
export const TINY_TEST_CONFIG: ModelConfig = {
  vocab_size: new CharTokenizer().vocabSize,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 256,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  attention_bias: true,
};

/** A two-layer model over 17 ids with a 32-token context, so a long prompt leaves little room. */
export const SHORT_CONTEXT_CONFIG: ModelConfig = {
  vocab_size: 17,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  attention_bias: true,
};

/**
 * A {@link SHORT_CONTEXT_CONFIG} model with larger-than-init weights (×10 plus seeded noise), so
 * that differences between code paths are not hidden by tiny logits.
 */
export function makeShortContextModel(seed: number): Transformer {
  const m = Transformer.create(SHORT_CONTEXT_CONFIG, { seed });
  const rng = new Rng(seed + 100);
  for (const v of m.params.values()) {
    const d = v.dataSync().slice() as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! * 10 + 0.05 * rng.normal();
    v.assign(tf.tensor(d, v.shape));
  }
  return m;
}

/** A random-init {@link TINY_TEST_CONFIG} model, reproducible from `seed`. */
export function makeTinyModel(
  seed = 0,
  options: { trainable?: boolean } = {},
): Transformer {
  return Transformer.create(TINY_TEST_CONFIG, { seed, ...options });
}

/**
 * Creates a random-init tiny model and saves it as a checkpoint folder `dir` (with the
 * default {@link CharTokenizer}); returns `dir`.
 */
export async function makeTinyCheckpoint(dir: string, seed = 0): Promise<string> {
  const model = makeTinyModel(seed);
  try {
    await saveCheckpoint(dir, model, new CharTokenizer(), { step: 0 });
  } finally {
    model.dispose();
  }
  return dir;
}

/** One message sent through a {@link RecordingContext}. */
export interface SentMessage {
  /** Recipient name. */
  to: string;
  /** The message as sent. */
  message: { type: string } & Record<string, unknown>;
}

/** An {@link ActorContext} that accepts every send and records it in order. */
export interface RecordingContext extends ActorContext {
  /** Every message sent so far, oldest first. */
  readonly sent: SentMessage[];
  /** The messages sent to `to`, oldest first. */
  to<T>(to: string): T[];
  /** The only message sent to `to`; fails the test when there is not exactly one. */
  only<T>(to: string): T;
}

/** A fake actor context for unit tests: records every `send`, never blocks. */
export function recordingContext(name = "test"): RecordingContext {
  const sent: SentMessage[] = [];
  const controller = new AbortController();
  return {
    name,
    signal: controller.signal,
    sent,
    send(to, message) {
      sent.push({ to, message: message as SentMessage["message"] });
      return Promise.resolve();
    },
    to<T>(to: string): T[] {
      return sent.filter((s) => s.to === to).map((s) => s.message as T);
    },
    only<T>(to: string): T {
      const list = sent.filter((s) => s.to === to);
      assert.equal(list.length, 1, `expected exactly one message to "${to}"`);
      return list[0]!.message as T;
    },
  };
}

/** Fails unless `|actual - expected| <= tol`. */
export function assertClose(actual: number, expected: number, tol = 1e-6, label = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${label} expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

/** Largest absolute element-wise difference of two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The ChatML prompt (no system turn) the tests use, as the CLI renders it by default. */
export function renderTestPrompt(question: string): string {
  return buildLayer1Prompt(question, { systemPrompt: null });
}

/** A query for `question` with its prompt rendered and tokenized. */
export function makeQuery(id: string, question: string, answer: number): Query {
  return {
    id,
    question,
    answer,
    prompt: renderTestPrompt(question),
    promptIds: new CharTokenizer().encode(renderTestPrompt(question)),
  };
}

/** One hand-made completion of {@link makeScored}. */
export interface HandRollout {
  /** Index of its query. */
  query: number;
  /** Completion text; `<|im_end|>` is appended unless `truncated`. */
  text: string;
  /** Reward given to it. */
  reward: number;
  /** Marks it as cut at the length limit (`finishReason: "length"`). @default false */
  truncated?: boolean;
}

/**
 * A `Scored` training batch made by hand: `queries`, `n` consecutive rollouts per query,
 * the rewards given, and old log-probs teacher-forced from `model` (so the importance ratio
 * starts at 1), each shifted by `logprobShift(i)` when given.
 */
export async function makeScored(
  model: Transformer,
  queries: Query[],
  rollouts: HandRollout[],
  options: { n: number; step?: number; logprobShift?: (i: number) => number },
): Promise<Scored> {
  const tokenizer = new CharTokenizer();
  const completionIds = rollouts.map((r) =>
    tokenizer.encode(r.truncated ? r.text : `${r.text}<|im_end|>`)
  );
  const logprobs = await completionLogprobs(
    model,
    rollouts.map((r) => queries[r.query]!.promptIds),
    completionIds,
    { padId: tokenizer.padId, temperature: 1 },
  );
  return {
    type: "Scored",
    purpose: "train",
    step: options.step ?? 1,
    label: "train",
    queries,
    n: options.n,
    policyVersion: 0,
    timings: { sampler: 0.001 },
    rollouts: rollouts.map((r, i) => ({
      queryIndex: r.query,
      completionIds: completionIds[i]!,
      logprobs: logprobs[i]!.map((lp) => lp + (options.logprobShift?.(i) ?? 0)),
      text: r.text,
      finishReason: r.truncated ? "length" : "stop",
    })),
    verdicts: rollouts.map((r) => {
      const v = verifyIntegerAnswer(r.text, queries[r.query]!.answer);
      return { ...v, reward: r.reward, correct: r.reward === 1 };
    }),
  };
}

/**
 * A Learner input for `model` with plain settings: constant learning rate 1e-2 without
 * warm-up, no weight decay, one optimizer step per batch, the GRPO algorithm
 * with `grpo` over TRL's defaults.
 */
export function makeLearnerInput(
  model: Transformer,
  options: { grpo?: Partial<GrpoConfig>; learner?: Partial<LearnerInput> } = {},
): LearnerInput {
  const config = GrpoConfigSchema.parse({ num_generations: 2, ...options.grpo });
  return {
    model,
    tokenizer: new CharTokenizer(),
    algorithm: grpoAlgorithm(config, 32),
    lr: 1e-2,
    lrSchedule: "constant",
    warmupRatio: 0,
    minLrRatio: 0,
    weightDecay: 0,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEps: 1e-8,
    maxGradNorm: 1,
    microBatchSize: 64,
    numIterations: 1,
    totalSteps: 10,
    maskTruncated: config.mask_truncated_completions,
    ...options.learner,
  };
}

/** The model's weights in Hugging Face layout, by name. */
export async function weightsOf(model: Transformer): Promise<Record<string, Float32Array>> {
  return Object.fromEntries([...(await model.exportWeights())].map(([k, v]) => [k, v.data]));
}

/** Largest absolute difference over every tensor of two weight sets with the same names. */
export function weightsDiff(
  a: Record<string, Float32Array>,
  b: Record<string, Float32Array>,
): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  return Math.max(...Object.keys(a).map((k) => maxAbsDiff(a[k]!, b[k]!)));
}

/** Resolves or rejects like `promise`, but rejects after `ms` milliseconds so a hang fails the test. */
export async function within<T>(promise: Promise<T>, ms: number, what = "promise"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a file or folder exists (the one of `model/fs.ts`). */
export { exists } from "../model/fs.ts";

// --- control server ---

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first event of `control` that `match` accepts. */
export function nextEvent(
  control: RunControl,
  match: (event: ControlEvent) => boolean,
): Promise<ControlEvent> {
  return new Promise((resolve) => {
    const unsubscribe = control.subscribe((event) => {
      if (!match(event)) return;
      unsubscribe();
      resolve(event);
    });
  });
}

/**
 * A training loop in miniature, shaped like cli/train.ts: boundary, then one step of work
 * (a 1 ms timer), then recordStep. Checkpoints record the step they were taken after.
 */
export function startLoop(control: RunControl, steps = 1000) {
  const progress = { step: 0, checkpoints: [] as number[], stoppedAt: -1 };
  const done = (async () => {
    for (let step = 1; step <= steps; step++) {
      const action = await control.atStepBoundary();
      if (action.checkpoint) progress.checkpoints.push(step - 1);
      if (action.stop) {
        progress.stoppedAt = step - 1;
        break;
      }
      await sleep(1);
      progress.step = step;
      control.recordStep(step, { "reward/mean": step / 10 }, { policyVersion: step });
    }
    control.markStopped();
  })();
  return { progress, done };
}

/**
 * Starts `cli/train.ts` as its own process, with the permissions of `deno task train`, on a
 * tiny random-init checkpoint made in `tmp`: `config` for 1000 steps with no evaluation,
 * `sets` as extra `--set` overrides, the run folder `<tmp>/run`. Kill the child when done.
 */
export async function spawnLongTinyRun(
  tmp: string,
  config: string,
  sets: string[] = [],
  stdout: "piped" | "null" = "piped",
): Promise<{ child: Deno.ChildProcess; output: Promise<Deno.CommandOutput>; runDir: string }> {
  const runDir = `${tmp}/run`;
  const init = await makeTinyCheckpoint(`${tmp}/tiny-init`);
  const overrides = [
    `model.init=${init}`,
    "run.steps=1000",
    "eval.before=false",
    "eval.after=false",
  ]
    .concat(sets).flatMap((s) => ["--set", s]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...TRAIN_RUN_ARGS, "--config", config, ...overrides, "--run-dir", runDir],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout,
    stderr: "piped",
  }).spawn();
  return { child, output: child.output(), runDir };
}

/** Two word problems, both answered 5. */
export const TWO_QUERIES: Query[] = [
  makeQuery("q0", "Ann has 2 pens and gets 3 more.", 5),
  makeQuery("q1", "Bo has 9 cards and gives away 4.", 5),
];

/**
 * Two groups of G = 2 answers to {@link TWO_QUERIES}, one right and one wrong each, so every
 * row has a non-zero advantage.
 */
export const TWO_GROUPS: HandRollout[] = [
  { query: 0, text: "<think>2+3=5</think>5", reward: 1 },
  { query: 0, text: "<think>2+3=6</think>6", reward: 0 },
  { query: 1, text: "<think>9-4=5</think>5", reward: 1 },
  { query: 1, text: "<think>x</think>1", reward: 0 },
];

/** Every line of a run's `metrics.jsonl`, evaluation lines included. */
export async function metricsRecords(runDir: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).split("\n").filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, number>);
}

/**
 * A metrics record without the fields that differ between runs that compute the same thing:
 * wall-clock (`time/*`, `throughput/*`), mailbox depths (`queue/*`) and restart counters.
 */
export function comparable(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).filter(([k]) => !/^(time|throughput|queue|restarts)\//.test(k)),
  );
}

/** The step records of a run's `metrics.jsonl` (evaluation lines left out), {@link comparable}. */
export async function stepRecords(runDir: string): Promise<Record<string, number>[]> {
  return (await metricsRecords(runDir)).filter((r) => !("eval/accuracy" in r)).map(comparable);
}

/**
 * Runs `cli/train.ts` as a process of its own on `config` with `--set` overrides into
 * `runDir`; resolves to its exit code and its stdout and stderr. A run still going after
 * `timeoutMs` is killed, so a hung run fails its test instead of blocking the suite.
 */
export async function runTrain(
  runDir: string,
  config: string,
  sets: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<{ code: number; log: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--config",
      config,
      ...sets.flatMap((s) => ["--set", s]),
      "--run-dir",
      runDir,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    ...(options.timeoutMs ? { signal: AbortSignal.timeout(options.timeoutMs) } : {}),
  }).output();
  const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, log };
}

/** A reachable nats-server: NATS_URL, or one started from PATH; undefined when neither. */
export async function natsServer(): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const env = Deno.env.get("NATS_URL");
  if (env) return { url: env, stop: () => Promise.resolve() };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const store = await Deno.makeTempDir({ prefix: "nats-test-" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (error) {
    await Deno.remove(store, { recursive: true });
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      child.kill();
      await child.status;
      await Deno.remove(store, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Writes `<tmp>/throwaway.ts`, an algorithm plug-in outside the repository (RLOO under
 * another name and section, whose live field is its own `throwaway.epsilon`), and `<tmp>/throwaway.yaml`, smoke-grpo running it with
 * `throwaway.epsilon: 0.3`; resolves to the YAML text.
 */
export async function writeThrowawayPlugin(tmp: string): Promise<string> {
  await Deno.writeTextFile(
    `${tmp}/throwaway.ts`,
    `import { algorithm as rloo, RlooConfigSchema } from "${REPO_ROOT}algorithms/rloo/mod.ts";
export const algorithm = {
  ...rloo,
  name: "throwaway",
  configSchema: RlooConfigSchema,
  liveFields: ["throwaway.epsilon"],
  buildGraph: (input) => rloo.buildGraph({ ...input, config: { ...input.config, rloo: input.config.throwaway } }),
};
`,
  );
  const smokeYaml = await Deno.readTextFile(`${REPO_ROOT}configs/smoke-grpo.yaml`);
  const yaml = smokeYaml.replace("algorithm: grpo", "algorithm: throwaway") +
    `\nplugins: [${tmp}/throwaway.ts]\nthrowaway:\n  epsilon: 0.3\n`;
  await Deno.writeTextFile(`${tmp}/throwaway.yaml`, yaml);
  return yaml;
}

/** The tokenizer fixture of {@link makeHfModel}: a Qwen2 BPE tokenizer of 1,005 ids. */
export const HF_TOKENIZER = `${REPO_ROOT}tests/fixtures/tokenizers/tiny-qwen2`;

/**
 * A random Qwen2 model over the {@link HF_TOKENIZER} fixture (1,005 ids, seed 3), saved as a
 * Hugging Face folder `dir` (on the wasm backend, which this starts).
 */
export async function makeHfModel(dir: string): Promise<void> {
  await initBackend("wasm");
  const model = Transformer.create({
    vocab_size: 1005,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    attention_bias: true,
  }, { seed: 3 });
  await saveHfModel(dir, model, {
    tokenizerFiles: {
      "tokenizer.json": await Deno.readFile(`${HF_TOKENIZER}/tokenizer.json`),
      "tokenizer_config.json": await Deno.readFile(`${HF_TOKENIZER}/tokenizer_config.json`),
    },
    eosTokenId: 1002,
    padTokenId: 1000,
  });
  model.dispose();
}

/** Whether `deno task setup:tensorflow` built a tfjs-node addon (CPU or GPU package). */
export { tensorflowSetUp as tensorflowReady } from "../model/backend.ts";

/** The `deno task serve` command line of deno.json, run by this deno. */
export async function serveArgs(): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  const [deno, ...args] = (tasks.serve.command as string).split(" ");
  assert.equal(deno, "deno");
  return args.map((a) => (a.endsWith(".ts") ? `${REPO_ROOT}${a}` : a));
}

/**
 * Starts `deno task serve --checkpoint <checkpoint> --port 0 <args>` and waits for its
 * `serving: URL` line; `close()` stops it.
 */
export async function startServeTask(
  checkpoint: string,
  args: readonly string[],
  env: Record<string, string> = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...(await serveArgs()),
      "--checkpoint",
      checkpoint,
      "--port",
      "0",
      ...args,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  while (!/serving: (\S+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`deno task serve exited before listening: ${text}`);
    text += value;
  }
  clearTimeout(timer);
  const url = /serving: (\S+)/.exec(text)![1]!;
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url,
    line: text.trim(),
    async close() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/**
 * Runs `deno task -q <args>` from the repository root, as a user would (no colour; `env` added
 * to this process's environment); resolves to the exit code and the two streams.
 */
export async function runTask(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/**
 * Runs `fn` with a fresh temporary folder (`prefix` names it) and removes the folder afterwards,
 * whether `fn` resolves or throws.
 */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `fn` over `items`, at most `limit` calls at once (by default one per core), the results in the
 * order of `items`. For tests that start several single-threaded processes whose order does not
 * matter. After a failure no further call starts, and the first failure rejects once the calls
 * already started have settled.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R>,
  limit = navigator.hardwareConcurrency,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (let i = next++; i < items.length && !failed; i = next++) {
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  });
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s) => s.status === "rejected");
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
  return out;
}
