/**
 * An OpenAI-compatible inference server for a trained policy (`deno task serve`): the subset
 * of the API that RL samplers and chat tools use, with vLLM's extras where they matter.
 *
 * - `GET /v1/models`: the base model and every loaded LoRA adapter (`parent` = the base), each
 *   with the `policy_version` of its weights
 * - `POST /v1/completions`: `prompt` as a string, strings, token ids or lists of token ids;
 *   `n`, `max_tokens` (default 16), `temperature` (0 = greedy), `top_p`, `top_k` (vLLM; 0 or
 *   -1 = off), `seed`, `stop`, `stop_token_ids` (vLLM), `logprobs` (0-20),
 *   `return_tokens_as_token_ids` (vLLM: logprob tokens as `"token_id:<id>"`); `echo` and
 *   `stream` must be false
 * - `POST /v1/chat/completions`: `messages` rendered with the model's chat template; `n`,
 *   `max_tokens`/`max_completion_tokens`, sampling as above, `logprobs` + `top_logprobs`;
 *   `mgrpo_correct: true` (or `--two-turn`) runs MGRPO's solve-then-correct: the model
 *   answers, then is shown its answer and a guide phrase in the same assistant turn and
 *   continues; `message.content` is the corrected answer and `mgrpo` holds both turns
 * - `POST /v1/load_lora_adapter` `{lora_name, lora_path}` and `POST /v1/unload_lora_adapter`
 *   `{lora_name}` (vLLM's dynamic LoRA endpoints): a PEFT adapter on the base model, served
 *   under its name
 * - `POST /v1/reload_checkpoint` `{model_path}` (also as SGLang's `/update_weights_from_disk`):
 *   replaces the base model with a checkpoint folder (adapters are dropped)
 *
 * Log-probs are those of `softmax(logits / temperature)` over the whole vocabulary (at
 * temperature 1 when greedy), the in-process Sampler's convention, so they are the RL
 * old log-probs as they are. Requests are validated with zod: 400 with an OpenAI-style error
 * naming the field (`error.param`) and the zod issues. One request generates at a time.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import * as tf from "@tensorflow/tfjs";
import type { Transformer } from "../model/transformer.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { type Tokenizer } from "../model/tokenizer.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { loadLoraAdapter } from "../model/lora.ts";
import { generate } from "../model/sampling.ts";
import { Rng } from "../util/rng.ts";
import { guardFor } from "./guard.ts";
import {
  type ChatMessage,
  CHATML_TEMPLATE,
  type HfChatTemplate,
  loadChatTemplate,
  renderChat,
} from "../prompts/chat_template.ts";
import { drawGuidePhrase, type GuidePosition, layer2Assistant } from "../algorithms/mgrpo/mod.ts";

/** One model the server can run: the base or an adapter on it. */
interface ServedModel {
  model: Transformer;
  /** Version of the policy its weights are (from `trainer_state.json` or `mgrpo_policy.json`). */
  version: number;
  /** The base model's name, for adapters. */
  parent?: string;
  /** Where its weights came from. */
  path: string;
  created: number;
}

/** The two-turn (solve → correct) settings: the `mgrpo` section's Layer-2 prompt. */
export interface TwoTurnSettings {
  /** Guide phrases p_guide; one is drawn per choice. */
  phrases: readonly string[];
  /** Text between the first answer (or its thought) and the phrase. @default "\n" */
  separator?: string;
  /** Where the phrase goes: after the answer (Eq. 5) or inside the open thought. @default "after_answer" */
  position?: GuidePosition;
  /** Layer-2 system prompt; `""` keeps the request's messages as they are. @default "" */
  systemPrompt?: string;
  /** Answer every chat request in two turns (`--two-turn`). @default false */
  always?: boolean;
}

/** A loaded checkpoint and the adapters loaded onto it, as the server runs them. */
export class ServedPolicy {
  /** Name of the base model (`--model-name`). */
  readonly name: string;
  /** The tokenizer of the checkpoint. */
  tokenizer: Tokenizer;
  /** The chat template: the checkpoint's, else ChatML. */
  template: string | HfChatTemplate;
  #models = new Map<string, ServedModel>();
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(name: string, tokenizer: Tokenizer, template: string | HfChatTemplate) {
    this.name = name;
    this.tokenizer = tokenizer;
    this.template = template;
  }

  /** Loads checkpoint folder `dir` (ours or a Hugging Face model's) as model `name`. */
  static async load(dir: string, name: string): Promise<ServedPolicy> {
    const loaded = await loadServed(dir);
    const policy = new ServedPolicy(name, loaded.tokenizer, loaded.template);
    policy.#models.set(name, loaded.served);
    return policy;
  }

  /** Runs `fn` after every earlier call has finished (generation and reloads take turns). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** The model named `name` (the base when absent), or `undefined`. */
  get(name?: string): (ServedModel & { name: string }) | undefined {
    const key = name ?? this.name;
    const m = this.#models.get(key);
    return m ? { ...m, name: key } : undefined;
  }

  /** Every served model, the base first. */
  list(): (ServedModel & { name: string })[] {
    return [...this.#models].map(([name, m]) => ({ ...m, name }));
  }

  /**
   * Loads the PEFT adapter of folder `path` onto a copy of the base model, served as `name`.
   *
   * @throws {RangeError} When `name` is taken or the base model already carries adapters
   */
  async loadAdapter(name: string, path: string): Promise<void> {
    if (this.#models.has(name)) {
      throw new RangeError(
        `Cannot load LoRA adapter: a model of that name is already loaded: current value is "${name}"`,
      );
    }
    const base = this.#models.get(this.name)!;
    const model = base.model.clone({ trainable: false });
    try {
      await loadLoraAdapter(path, model);
      for (const v of model.params.values()) v.trainable = false;
    } catch (e) {
      model.dispose();
      throw e;
    }
    const version = await readJsonNumber(`${path}/mgrpo_policy.json`, "policy_version");
    this.#models.set(name, {
      model,
      version: version ?? base.version,
      parent: this.name,
      path,
      created: Math.floor(Date.now() / 1000),
    });
  }

  /**
   * Unloads adapter `name`.
   *
   * @throws {RangeError} When no adapter has that name
   */
  unloadAdapter(name: string): void {
    const m = this.#models.get(name);
    if (!m || m.parent === undefined) {
      throw new RangeError(
        `Cannot unload LoRA adapter: no adapter of that name is loaded: current value is "${name}"`,
      );
    }
    this.#models.delete(name);
    m.model.dispose();
  }

  /** Replaces the base model with checkpoint folder `dir`; loaded adapters are dropped. */
  async reload(dir: string): Promise<number> {
    const loaded = await loadServed(dir);
    for (const m of this.#models.values()) m.model.dispose();
    this.#models.clear();
    this.#models.set(this.name, loaded.served);
    this.tokenizer = loaded.tokenizer;
    this.template = loaded.template;
    return loaded.served.version;
  }

  /** Disposes every model. */
  dispose(): void {
    for (const m of this.#models.values()) m.model.dispose();
    this.#models.clear();
  }
}

async function readJsonNumber(path: string, field: string): Promise<number | undefined> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path))?.[field];
    return typeof value === "number" ? value : undefined;
  } catch {
    return undefined;
  }
}

async function loadServed(dir: string) {
  const { model, tokenizer, state } = await loadCheckpoint(dir, { trainable: false });
  model.limitVocabulary(tokenizer.vocabSize);
  for (const v of model.params.values()) v.trainable = false;
  const template = tokenizer instanceof CharTokenizer
    ? CHATML_TEMPLATE
    : await loadChatTemplate(dir).catch(() => CHATML_TEMPLATE);
  const v = state.policy_version ?? state.step;
  const served: ServedModel = {
    model,
    version: typeof v === "number" ? v : 0,
    path: dir,
    created: Math.floor(Date.now() / 1000),
  };
  return { served, tokenizer, template };
}

// --- request schemas ---

const ids = z.array(z.number().int().min(0));

const SamplingFields = {
  model: z.string().optional().describe("Model (base or adapter name); the base when absent"),
  n: z.number().int().min(1).max(128).default(1).describe("Completions per prompt"),
  temperature: z.number().min(0).max(100).default(1).describe("0 = greedy"),
  top_p: z.number().gt(0).max(1).default(1).describe("Nucleus mass; 1 = off"),
  top_k: z.number().int().min(-1).default(-1).describe("vLLM extra: top-k; 0 or -1 = off"),
  seed: z.number().int().optional().describe("Seed of the sampling RNG"),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullable().optional().describe(
    "Stop strings (left out of the text)",
  ),
  stop_token_ids: ids.optional().describe("vLLM extra: ids that also end a completion"),
  return_tokens_as_token_ids: z.boolean().default(false).describe(
    'vLLM extra: logprob tokens as "token_id:<id>"',
  ),
  stream: z.literal(false).optional().describe("Streaming is not supported"),
  presence_penalty: z.literal(0).optional().describe("Only 0 is supported"),
  frequency_penalty: z.literal(0).optional().describe("Only 0 is supported"),
};

/** Body of `POST /v1/completions`. */
export const CompletionRequestSchema = z.object({
  ...SamplingFields,
  prompt: z.union([z.string(), z.array(z.string()).min(1), ids.min(1), z.array(ids.min(1)).min(1)])
    .describe("A prompt, several, token ids, or several lists of token ids"),
  max_tokens: z.number().int().min(1).default(16).describe("Most tokens per completion"),
  logprobs: z.number().int().min(0).max(20).nullable().optional().describe(
    "Log-probs of the sampled token and of this many most likely ones",
  ),
  echo: z.literal(false).optional().describe("Echo is not supported"),
  return_token_ids: z.boolean().default(false).describe(
    "vLLM extra: each choice carries its completion's token_ids",
  ),
});

/** Body of `POST /v1/chat/completions`. */
export const ChatCompletionRequestSchema = z.object({
  ...SamplingFields,
  messages: z.array(z.object({
    role: z.enum(["system", "user", "assistant"]),
    content: z.string(),
  })).min(1),
  max_tokens: z.number().int().min(1).optional().describe("Most tokens per answer"),
  max_completion_tokens: z.number().int().min(1).optional().describe("Same as max_tokens"),
  logprobs: z.boolean().default(false).describe("Return log-probs of the answer's tokens"),
  top_logprobs: z.number().int().min(0).max(20).default(0).describe(
    "With logprobs: this many most likely tokens at each position",
  ),
  mgrpo_correct: z.boolean().optional().describe(
    "Two turns: answer, then correct the answer after a guide phrase (MGRPO)",
  ),
});

const LoadLoraSchema = z.object({ lora_name: z.string().min(1), lora_path: z.string().min(1) });
const UnloadLoraSchema = z.object({ lora_name: z.string().min(1) });
const ReloadSchema = z.object({ model_path: z.string().min(1) });

// --- errors ---

function openAiError(
  status: 400 | 401 | 403 | 404 | 413 | 415 | 500,
  message: string,
  extra: { param?: string | null; issues?: unknown } = {},
): HTTPException {
  const type = status === 400
    ? "BadRequestError"
    : status === 401
    ? "AuthenticationError"
    : status === 403
    ? "PermissionDeniedError"
    : status === 404
    ? "NotFoundError"
    : status === 413
    ? "RequestTooLargeError"
    : status === 415
    ? "UnsupportedMediaTypeError"
    : "InternalServerError";
  const body = {
    error: { message, type, param: extra.param ?? null, code: status },
    ...(extra.issues ? { issues: extra.issues } : {}),
  };
  return new HTTPException(status, { message, res: Response.json(body, { status }) });
}

async function parseBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw openAiError(400, `Invalid request: the body is not JSON: ${(cause as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join(".");
    let value: unknown = json;
    for (const key of issue.path) value = (value as Record<PropertyKey, unknown>)?.[key];
    throw openAiError(
      400,
      `Invalid request: field "${field}" ${lowerFirst(issue.message)}: current value is ${
        value === undefined ? "undefined" : JSON.stringify(value)
      }`,
      { param: field, issues: parsed.error.issues },
    );
  }
  return parsed.data;
}

// --- sampling ---

interface SampleRequest {
  prompts: number[][];
  n: number;
  /**
   * Most tokens per completion; each prompt's completions also stop, with `length`, where
   * that prompt and its completion fill the context, whatever the other prompts' lengths.
   */
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number | undefined;
  stopIds: readonly number[];
  stop: readonly string[];
  /** Most likely alternatives to report per token; `null` = no log-probs. */
  topLogprobs: number | null;
}

interface SampledChoice {
  promptIndex: number;
  tokens: number[];
  logprobs: number[];
  text: string;
  finishReason: "stop" | "length";
  /** Per token: the most likely `[id, logprob]` pairs (when asked for). */
  top?: [number, number][][];
}

/** Cuts a completion at the first stop string: text before it, tokens through the one that completed it. */
function applyStop(c: SampledChoice, tokenizer: Tokenizer, stop: readonly string[]): void {
  if (stop.length === 0) return;
  for (let t = 1; t <= c.tokens.length; t++) {
    const text = tokenizer.decode(c.tokens.slice(0, t), { skipSpecialTokens: true });
    const at = Math.min(...stop.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(at)) {
      c.tokens = c.tokens.slice(0, t);
      c.logprobs = c.logprobs.slice(0, t);
      c.text = text.slice(0, at);
      c.finishReason = "stop";
      return;
    }
  }
}

/** The `k` most likely next tokens at every completion position, by a teacher-forced pass. */
async function topAlternatives(
  model: Transformer,
  prompt: readonly number[],
  completion: readonly number[],
  k: number,
  temperature: number,
): Promise<[number, number][][]> {
  if (completion.length === 0) return [];
  const seq = [...prompt, ...completion.slice(0, -1)];
  const { values, indices } = tf.tidy(() => {
    const { logits } = model.forward(tf.tensor2d(seq, [1, seq.length], "int32"));
    const tail = logits.slice([prompt.length - 1, 0], [completion.length, -1]); // [C, V]
    const logp = tf.logSoftmax(tf.div(tail, temperature));
    return tf.topk(logp, k);
  });
  const [v, i] = [await values.array(), await indices.array()] as [number[][], number[][]];
  tf.dispose([values, indices]);
  return v.map((row, r) => row.map((lp, j) => [i[r]![j]!, lp] as [number, number]));
}

async function sample(
  model: Transformer,
  tokenizer: Tokenizer,
  req: SampleRequest,
): Promise<SampledChoice[]> {
  const ctx = model.config.max_position_embeddings;
  req.prompts.forEach((p, i) => {
    const bad = p.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) {
      throw openAiError(
        400,
        `Invalid request: field "prompt" holds a token id beyond the vocabulary of ${tokenizer.vocabSize}: current value is ${bad}`,
        { param: "prompt" },
      );
    }
    if (p.length >= ctx) {
      throw openAiError(
        400,
        `Invalid request: prompt ${i} must be shorter than the context of ${ctx} tokens: current value is ${p.length} tokens`,
        { param: "prompt" },
      );
    }
  });
  const greedy = req.temperature === 0;
  const rng = new Rng(req.seed ?? Math.floor(Math.random() * 2 ** 31));
  const rows: number[][] = [];
  const index: number[] = [];
  req.prompts.forEach((p, i) => {
    for (let j = 0; j < req.n; j++) {
      rows.push(p);
      index.push(i);
    }
  });
  const out: SampledChoice[] = [];
  const maxBatch = 64;
  for (let start = 0; start < rows.length; start += maxBatch) {
    const gens = await generate(model, rows.slice(start, start + maxBatch), {
      maxNewTokens: req.maxTokens,
      temperature: greedy ? 1 : req.temperature,
      topP: req.topP,
      topK: req.topK > 0 ? req.topK : 0,
      greedy,
      stopIds: [...new Set([...tokenizer.stopIds, ...req.stopIds])],
      padId: tokenizer.padId,
      rng,
    });
    gens.forEach((g, j) =>
      out.push({
        promptIndex: index[start + j]!,
        tokens: g.tokens,
        logprobs: g.logprobs,
        text: tokenizer.decode(g.tokens, { skipSpecialTokens: true }),
        finishReason: g.finishReason,
      })
    );
  }
  for (const c of out) {
    applyStop(c, tokenizer, req.stop);
    if (req.topLogprobs !== null && req.topLogprobs > 0) {
      const k = Math.min(req.topLogprobs, tokenizer.vocabSize);
      c.top = await topAlternatives(
        model,
        req.prompts[c.promptIndex]!,
        c.tokens,
        k,
        greedy ? 1 : req.temperature,
      );
    }
  }
  return out;
}

function tokenName(tokenizer: Tokenizer, id: number, asIds: boolean): string {
  return asIds ? `token_id:${id}` : tokenizer.decode([id]);
}

/** The legacy completions `logprobs` object, as vLLM builds it. */
function completionLogprobs(c: SampledChoice, tokenizer: Tokenizer, asIds: boolean) {
  const tokens = c.tokens.map((id) => tokenName(tokenizer, id, asIds));
  const textOffset: number[] = [];
  let offset = 0;
  for (const t of tokens) {
    textOffset.push(offset);
    offset += t.length;
  }
  return {
    text_offset: textOffset,
    token_logprobs: c.logprobs,
    tokens,
    top_logprobs: c.tokens.map((_id, j) => {
      const top: Record<string, number> = { [tokens[j]!]: c.logprobs[j]! };
      for (const [alt, lp] of c.top?.[j] ?? []) {
        top[tokenName(tokenizer, alt, asIds)] ??= lp;
      }
      return top;
    }),
  };
}

/** The chat `logprobs.content` array. */
function chatLogprobs(c: SampledChoice, tokenizer: Tokenizer, asIds: boolean) {
  const enc = new TextEncoder();
  const entry = (id: number, logprob: number) => {
    const token = tokenName(tokenizer, id, asIds);
    return { token, logprob, bytes: [...enc.encode(token)] };
  };
  return {
    content: c.tokens.map((id, j) => ({
      ...entry(id, c.logprobs[j]!),
      top_logprobs: (c.top?.[j] ?? []).map(([alt, lp]) => entry(alt, lp)),
    })),
  };
}

function stopList(stop: string | string[] | null | undefined): string[] {
  return stop == null ? [] : typeof stop === "string" ? [stop] : stop;
}

function requestId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;
}

// --- app ---

/** Options of {@linkcode createOpenAiApp}. */
export interface OpenAiAppOptions {
  /** Requests must carry `Authorization: Bearer <apiKey>` when set. @default undefined */
  apiKey?: string;
  /** MGRPO's two-turn mode of chat completions; without it `mgrpo_correct` is refused. */
  twoTurn?: TwoTurnSettings;
  /** The address the server binds (see `server/guard.ts`). @default "127.0.0.1" */
  host?: string;
  /** More host names accepted in `Host` and `Origin` (serve's `--allowed-host`). @default [] */
  allowedHosts?: readonly string[];
  /** Largest request body in bytes. @default DEFAULT_MAX_BODY_BYTES */
  maxBodyBytes?: number;
}

/**
 * Builds the OpenAI-compatible app over `policy`. Serve it with
 * `Deno.serve({ hostname: "127.0.0.1", port: 8000 }, app.fetch)`; test it with
 * `app.request()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../model/backend.ts";
 * import { createOpenAiApp, ServedPolicy } from "./openai_app.ts";
 *
 * await initBackend("cpu");
 * const policy = await ServedPolicy.load("checkpoints/tiny-sft", "tiny");
 * const app = createOpenAiApp(policy);
 * const res = await app.request("/v1/completions", {
 *   method: "POST",
 *   headers: { "Content-Type": "application/json" },
 *   body: JSON.stringify({ prompt: "1+1=", max_tokens: 4, temperature: 0, logprobs: 0 }),
 * });
 * const { choices } = await res.json();
 * assert.equal(choices.length, 1);
 * assert.equal(choices[0].logprobs.token_logprobs.length, choices[0].logprobs.tokens.length);
 * policy.dispose();
 * ```
 */
export function createOpenAiApp(policy: ServedPolicy, options: OpenAiAppOptions = {}) {
  const auth = options.apiKey === undefined ? allowAnyone() : requireApiKey(options.apiKey);
  const resolve = (name: string | undefined) => {
    const m = policy.get(name);
    if (!m) {
      throw openAiError(404, `The model "${name}" does not exist`, { param: "model" });
    }
    return m;
  };
  const reload = async (c: Context) => {
    const body = await parseBody(c, ReloadSchema);
    const version = await policy.exclusive(() => policy.reload(body.model_path)).catch((e) => {
      throw openAiError(400, `Cannot reload checkpoint: ${(e as Error).message}`, {
        param: "model_path",
      });
    });
    return c.json({
      success: true,
      message: `Reloaded "${body.model_path}"`,
      policy_version: version,
    }, 200);
  };
  return new Hono()
    .use("*", guardFor(options, (status, message) => openAiError(status, message)))
    .use("/v1/*", auth)
    .get("/health", (c) => c.body(null, 200))
    .get("/v1/models", (c) =>
      c.json({
        object: "list",
        data: policy.list().map((m) => ({
          id: m.name,
          object: "model",
          created: m.created,
          owned_by: "mgrpo",
          root: m.path,
          parent: m.parent ?? null,
          max_model_len: m.model.config.max_position_embeddings,
          policy_version: m.version,
        })),
      }, 200))
    .post("/v1/completions", async (c) => {
      const body = await parseBody(c, CompletionRequestSchema);
      const tokenizer = policy.tokenizer;
      const raw = body.prompt;
      const prompts: number[][] = typeof raw === "string"
        ? [encodeRequestText(tokenizer, raw, "prompt")]
        : raw.every((p) => typeof p === "string")
        ? (raw as string[]).map((p) => encodeRequestText(tokenizer, p, "prompt"))
        : raw.every((p) => typeof p === "number")
        ? [raw as number[]]
        : raw as number[][];
      const created = Math.floor(Date.now() / 1000);
      const { choices, name } = await policy.exclusive(async () => {
        const m = resolve(body.model);
        return {
          name: m.name,
          choices: await sample(m.model, tokenizer, {
            prompts,
            n: body.n,
            maxTokens: body.max_tokens,
            temperature: body.temperature,
            topP: body.top_p,
            topK: body.top_k,
            seed: body.seed,
            stopIds: body.stop_token_ids ?? [],
            stop: stopList(body.stop),
            topLogprobs: body.logprobs ?? null,
          }),
        };
      });
      const completionTokens = choices.reduce((a, ch) => a + ch.tokens.length, 0);
      const promptTokens = prompts.reduce((a, p) => a + p.length, 0);
      return c.json({
        id: requestId("cmpl"),
        object: "text_completion",
        created,
        model: name,
        choices: choices.map((ch, index) => ({
          index,
          text: ch.text,
          logprobs: body.logprobs == null
            ? null
            : completionLogprobs(ch, tokenizer, body.return_tokens_as_token_ids),
          finish_reason: ch.finishReason,
          stop_reason: null,
          ...(body.return_token_ids ? { token_ids: ch.tokens } : {}),
        })),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      }, 200);
    })
    .post("/v1/chat/completions", async (c) => {
      const body = await parseBody(c, ChatCompletionRequestSchema);
      const twoTurn = body.mgrpo_correct ?? options.twoTurn?.always ?? false;
      if (twoTurn && !options.twoTurn) {
        throw openAiError(
          400,
          'Invalid request: field "mgrpo_correct" needs a server started with two-turn settings: current value is true',
          { param: "mgrpo_correct" },
        );
      }
      const tokenizer = policy.tokenizer;
      const messages = body.messages as ChatMessage[];
      const prompt = encodeRequestText(
        tokenizer,
        renderChat(messages, { template: policy.template, addGenerationPrompt: true }),
        "messages",
      );
      const ctx = (policy.get(body.model)?.model.config.max_position_embeddings) ?? 0;
      const maxTokens = body.max_completion_tokens ?? body.max_tokens ??
        Math.max(1, ctx - prompt.length);
      const sampling = {
        n: body.n,
        maxTokens,
        temperature: body.temperature,
        topP: body.top_p,
        topK: body.top_k,
        stopIds: body.stop_token_ids ?? [],
        stop: stopList(body.stop),
        topLogprobs: body.logprobs ? body.top_logprobs : null,
      };
      const created = Math.floor(Date.now() / 1000);
      const result = await policy.exclusive(async () => {
        const m = resolve(body.model);
        const first = await sample(m.model, tokenizer, {
          ...sampling,
          prompts: [prompt],
          seed: body.seed,
        });
        if (!twoTurn) return { name: m.name, first, second: undefined, phrases: [] };
        // Layer 2 (Eq. 5, or the appendix form): the generation prompt, the first answer
        // verbatim (never re-rendered as a message: a template may strip its reasoning), the
        // separator and a guide phrase; the turn is left open for the correction.
        const settings = options.twoTurn!;
        const rng = new Rng((body.seed ?? Math.floor(Math.random() * 2 ** 31)) + 1);
        const system = settings.systemPrompt ?? "";
        const base = system === "" ? messages : [
          { role: "system" as const, content: system },
          ...messages.filter((x) => x.role !== "system"),
        ];
        const phrases = first.map(() => drawGuidePhrase(rng, settings.phrases));
        const head = renderChat(base, { template: policy.template, addGenerationPrompt: true });
        const prompts = first.map((ch, i) =>
          tokenizer.encode(
            head + layer2Assistant(ch.text, phrases[i]!, {
              separator: settings.separator ?? "\n",
              position: settings.position ?? "after_answer",
            }),
          )
        );
        const second = await sample(m.model, tokenizer, {
          ...sampling,
          n: 1,
          prompts,
          seed: body.seed === undefined ? undefined : body.seed + 2,
        });
        return { name: m.name, first, second, phrases, prompts };
      });
      const { first, second, phrases } = result;
      const final = second ?? first;
      const promptTokens = prompt.length +
        (result.prompts?.reduce((a, p) => a + p.length, 0) ?? 0);
      const completionTokens = [...first, ...(second ?? [])].reduce(
        (a, ch) => a + ch.tokens.length,
        0,
      );
      return c.json({
        id: requestId("chatcmpl"),
        object: "chat.completion",
        created,
        model: result.name,
        choices: final.map((ch, index) => ({
          index,
          message: { role: "assistant", content: ch.text },
          logprobs: body.logprobs
            ? chatLogprobs(ch, tokenizer, body.return_tokens_as_token_ids)
            : null,
          finish_reason: ch.finishReason,
          ...(second
            ? {
              mgrpo: {
                first_turn: {
                  content: first[index]!.text,
                  finish_reason: first[index]!.finishReason,
                },
                guide_phrase: phrases[index],
                correction: { content: ch.text, finish_reason: ch.finishReason },
              },
            }
            : {}),
        })),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      }, 200);
    })
    .post("/v1/load_lora_adapter", async (c) => {
      const body = await parseBody(c, LoadLoraSchema);
      await policy.exclusive(() => policy.loadAdapter(body.lora_name, body.lora_path)).catch(
        (e) => {
          throw openAiError(
            400,
            `Cannot load LoRA adapter "${body.lora_name}": ${(e as Error).message}`,
            {
              param: "lora_path",
            },
          );
        },
      );
      return c.text(`Success: LoRA adapter '${body.lora_name}' added successfully.`, 200);
    })
    .post("/v1/unload_lora_adapter", async (c) => {
      const body = await parseBody(c, UnloadLoraSchema);
      try {
        await policy.exclusive(() => Promise.resolve(policy.unloadAdapter(body.lora_name)));
      } catch (e) {
        throw openAiError(404, (e as Error).message, { param: "lora_name" });
      }
      return c.text(`Success: LoRA adapter '${body.lora_name}' removed successfully.`, 200);
    })
    .post("/v1/reload_checkpoint", reload)
    .post("/update_weights_from_disk", auth, reload)
    .notFound((c) =>
      c.json({
        error: {
          message: `No route "${c.req.method} ${c.req.path}"`,
          type: "NotFoundError",
          param: null,
          code: 404,
        },
      }, 404)
    )
    .onError((error, c) => {
      if (error instanceof HTTPException) return error.getResponse();
      const message = error instanceof Error ? error.message : String(error);
      return c.json(
        { error: { message, type: "InternalServerError", param: null, code: 500 } },
        500,
      );
    });
}

/** The typed API of the OpenAI-compatible app. */
export type OpenAiApp = ReturnType<typeof createOpenAiApp>;

/**
 * The ids of text from a request; text the model's tokenizer cannot encode (a character
 * outside a character-level vocabulary) is the client's error: 400 naming the field.
 */
function encodeRequestText(
  tokenizer: { encode(text: string): number[] },
  text: string,
  param: string,
): number[] {
  try {
    return tokenizer.encode(text);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw openAiError(
      400,
      `Invalid request: field "${param}" holds text the model's tokenizer cannot encode: ${
        lowerFirst(error.message)
      }`,
      { param },
    );
  }
}

function requireApiKey(key: string): MiddlewareHandler {
  return async function requireApiKey(c, next) {
    if (c.req.header("Authorization") !== `Bearer ${key}`) {
      throw openAiError(401, "Cannot authorize request: missing or wrong API key");
    }
    await next();
  };
}

function allowAnyone(): MiddlewareHandler {
  return async function allowAnyone(_c, next) {
    await next();
  };
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
