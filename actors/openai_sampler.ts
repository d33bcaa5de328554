/**
 * The Sampler's OpenAI-compatible backend: rollouts from a vLLM, SGLang or llama.cpp server
 * (or `deno task serve`) through `POST /v1/completions`, and new weights pushed to it after
 * each Learner update.
 *
 * Requests send the prompt as token ids (`prompt: [[ids...]]`), so the server cannot tokenize
 * it differently, with `logprobs: 0` and `return_tokens_as_token_ids: true`: each completion
 * token comes back as `"token_id:<id>"` with its log-prob (a `token_ids` array, which vLLM
 * returns with `return_token_ids`, is used when present). A response without what a rollout
 * needs (ids, log-probs, `n` choices, a finish reason) is an error naming the URL, the field
 * and its value. 429, 5xx, timeouts and network errors are retried with exponential backoff;
 * at most `maxConcurrency` requests are in flight.
 *
 * Weight sync after a `Weights` message: `lora` writes the adapter (PEFT format) to
 * `<syncDir>/<loraName>-v<version>` and POSTs vLLM's `/v1/load_lora_adapter`
 * `{lora_name, lora_path}`, then samples with `model: <loraName>-v<version>` and unloads the
 * previous adapter; `checkpoint` saves a checkpoint folder `<syncDir>/checkpoint-v<version>`
 * and POSTs `{model_path}` to `reloadPath`; `none` leaves the server's weights alone (the
 * rollouts then keep the version the server started with).
 *
 * Log-probs: vLLM reports those of the unmodified model (temperature 1) unless started with
 * `--logprobs-mode processed_logprobs`; `deno task serve` reports them at the sampling
 * temperature over the whole vocabulary, as the in-process Sampler does.
 *
 * @module
 */
import type { Query, Rollout, SamplingParams } from "./messages.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { Transformer } from "../model/transformer.ts";
import type { Rng } from "../util/rng.ts";
import { saveLoraAdapter } from "../model/lora.ts";
import { saveCheckpoint } from "../model/checkpoint.ts";

/** How new weights reach the server. */
export type WeightSync = "lora" | "checkpoint" | "none";

/** Options of {@linkcode OpenAiSampler}. */
export interface OpenAiSamplerOptions {
  /** Server URL, with or without the trailing `/v1` (`http://127.0.0.1:8000/v1`). */
  baseUrl: string;
  /** Model name of requests (the served base model) until a LoRA sync names an adapter. */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`. @default undefined */
  apiKey?: string;
  /** Most requests in flight at once. @default 8 */
  maxConcurrency?: number;
  /** Retries of a request after a 429, 5xx, timeout or network error. @default 4 */
  maxRetries?: number;
  /** Limit of one attempt, in seconds. @default 120 */
  timeoutS?: number;
  /**
   * Wait before the first retry in milliseconds; doubled at each retry (longer when the server
   * sends `Retry-After`). @default 250
   */
  backoffMs?: number;
  /** How new weights reach the server. @default "none" */
  weightSync?: WeightSync;
  /** Folder the adapters or checkpoints are written to (must be readable by the server). @default "sync" */
  syncDir?: string;
  /** Adapter names are `<loraName>-v<version>`. @default "mgrpo-policy" */
  loraName?: string;
  /** Path (from the server's root) of the checkpoint reload endpoint. @default "/v1/reload_checkpoint" */
  reloadPath?: string;
  /** Version of the weights the server holds when the run starts. @default 0 */
  serverVersion?: number;
  /** The `fetch` to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One completion parsed from a response. */
export interface OpenAiCompletion {
  /** Completion token ids. */
  tokens: number[];
  /** Log-prob of each token as the server reports it. */
  logprobs: number[];
  /** `stop` or `length`. */
  finishReason: "stop" | "length";
}

/** HTTP statuses worth another attempt. */
function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** A counting semaphore: at most `limit` holders at once, waiters served in order. */
class Semaphore {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** `JSON.stringify` cut to `max` characters, for error messages. */
function show(value: unknown, max = 200): string {
  const text = value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * A client of an OpenAI-compatible completions server for the Sampler: samples rollouts and
 * pushes new weights.
 *
 * @example
 * ```ts ignore
 * const backend = new OpenAiSampler({ baseUrl: "http://127.0.0.1:8000/v1", model: "Qwen/Qwen2.5-0.5B" });
 * const rollouts = await backend.generate(queries, 8, params, tokenizer, rng);
 * ```
 */
export class OpenAiSampler {
  /** The options, defaults filled in. */
  readonly options: Required<Omit<OpenAiSamplerOptions, "apiKey" | "fetch" | "serverVersion">>;
  /** `<server>/v1`. */
  readonly v1Url: string;
  /** The server root (`baseUrl` without `/v1`). */
  readonly rootUrl: string;
  /** Model name requests use now (the base, or the last synced adapter). */
  model: string;
  /** Version of the weights the server holds. */
  serverVersion: number;
  #apiKey: string | undefined;
  #fetch: typeof fetch;
  #limit: Semaphore;

  constructor(options: OpenAiSamplerOptions) {
    const root = options.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
    this.rootUrl = root;
    this.v1Url = `${root}/v1`;
    this.options = {
      baseUrl: options.baseUrl,
      model: options.model,
      maxConcurrency: options.maxConcurrency ?? 8,
      maxRetries: options.maxRetries ?? 4,
      timeoutS: options.timeoutS ?? 120,
      backoffMs: options.backoffMs ?? 250,
      weightSync: options.weightSync ?? "none",
      syncDir: options.syncDir ?? "sync",
      loraName: options.loraName ?? "mgrpo-policy",
      reloadPath: options.reloadPath ?? "/v1/reload_checkpoint",
    };
    if (!Number.isInteger(this.options.maxConcurrency) || this.options.maxConcurrency < 1) {
      throw new RangeError(
        `Invalid OpenAI sampler option: maxConcurrency must be an integer >= 1: current value is ${this.options.maxConcurrency}`,
      );
    }
    this.model = options.model;
    this.serverVersion = options.serverVersion ?? 0;
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#limit = new Semaphore(this.options.maxConcurrency);
  }

  /**
   * POSTs JSON `body` to `url` and returns the parsed JSON (or text) response, retrying 429,
   * 408, 5xx, timeouts and network errors up to `maxRetries` times with exponential backoff.
   *
   * @throws {Error} Naming the URL, the HTTP status and the server's message, after the last
   * attempt or at once for another status
   */
  async post(url: string, body: unknown): Promise<unknown> {
    const { maxRetries, backoffMs, timeoutS } = this.options;
    let last = "";
    let retryAfterMs = 0;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (attempt > 0) {
        const wait = Math.max(backoffMs * 2 ** (attempt - 1), retryAfterMs);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      retryAfterMs = 0;
      let res: Response;
      try {
        res = await this.#limit.run(() =>
          this.#fetch(url, {
            method: "POST",
            headers: {
              "Content-Type": "application/json",
              ...(this.#apiKey ? { Authorization: `Bearer ${this.#apiKey}` } : {}),
            },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(timeoutS * 1000),
          })
        );
      } catch (e) {
        last = `${(e as Error).name}: ${(e as Error).message}`;
        continue; // network error or timeout
      }
      const text = await res.text();
      if (res.ok) {
        try {
          return JSON.parse(text);
        } catch {
          return text; // vLLM answers /v1/load_lora_adapter with plain text
        }
      }
      last = `HTTP ${res.status}: ${text.slice(0, 300)}`;
      // A server's Retry-After (seconds) is honoured, up to 60 s.
      const after = Number(res.headers.get("Retry-After"));
      if (Number.isFinite(after) && after > 0) retryAfterMs = Math.min(after, 60) * 1000;
      if (!retryable(res.status)) {
        throw new Error(`Request to "${url}" failed: current value is ${last}`);
      }
    }
    throw new Error(
      `Request to "${url}" failed after ${maxRetries + 1} attempts: current value is ${last}`,
    );
  }

  /**
   * Samples `n` completions of one prompt given as token ids.
   *
   * @throws {TypeError} When the response lacks ids, log-probs, the `n` choices or a finish
   * reason, naming the URL, the field and its value
   */
  async complete(
    promptIds: readonly number[],
    n: number,
    params: SamplingParams,
    options: { seed: number; stopIds: readonly number[]; vocabSize: number },
  ): Promise<OpenAiCompletion[]> {
    const url = `${this.v1Url}/completions`;
    const body: Record<string, unknown> = {
      model: this.model,
      prompt: [promptIds],
      n,
      max_tokens: params.maxNewTokens,
      // Temperature 0 is greedy in the OpenAI API (its log-probs are at temperature 1).
      temperature: params.greedy ? 0 : params.temperature,
      top_p: params.greedy ? 1 : params.topP,
      logprobs: 0,
      seed: options.seed,
      stream: false,
      echo: false,
      // vLLM extras: ignored by servers that do not know them.
      return_tokens_as_token_ids: true,
      stop_token_ids: [...options.stopIds],
      ...(params.topK > 0 && !params.greedy ? { top_k: params.topK } : {}),
    };
    const response = await this.post(url, body);
    return parseCompletions(response, { url, n, vocabSize: options.vocabSize });
  }

  /**
   * Samples `n` completions for each query (one request per query, `maxConcurrency` in
   * flight), as the in-process Sampler's rollouts: `n` consecutive rollouts per query.
   */
  async generate(
    queries: readonly Query[],
    n: number,
    params: SamplingParams,
    tokenizer: Tokenizer,
    rng: Rng,
  ): Promise<Rollout[]> {
    // Seeds are drawn in query order before the requests start, so they do not depend on
    // the order responses arrive in.
    const seeds = queries.map(() => rng.nextUint32() & 0x7fffffff);
    const results = await Promise.all(queries.map((q, i) =>
      this.complete(q.promptIds, n, params, {
        seed: seeds[i]!,
        stopIds: tokenizer.stopIds,
        vocabSize: tokenizer.vocabSize,
      })
    ));
    const stop = new Set(tokenizer.stopIds);
    return results.flatMap((completions, queryIndex) =>
      completions.map((c) => ({
        queryIndex,
        completionIds: c.tokens,
        logprobs: c.logprobs,
        text: tokenizer.decode(c.tokens, { skipSpecialTokens: true }),
        // A stop string also ends a completion with "stop"; the ids tell which it was not.
        finishReason: c.finishReason === "stop" || stop.has(c.tokens.at(-1) ?? -1)
          ? "stop"
          : "length",
      }))
    );
  }

  /**
   * Pushes `model` (holding the Learner's weights of `version`) to the server as the
   * `weightSync` option says, and returns the version the server holds afterwards.
   */
  async syncWeights(model: Transformer, tokenizer: Tokenizer, version: number): Promise<number> {
    const { weightSync, syncDir, loraName, reloadPath } = this.options;
    if (weightSync === "none") return this.serverVersion;
    const dir = await Deno.realPath(await ensureDir(syncDir));
    if (weightSync === "lora") {
      if (!model.lora) {
        throw new RangeError(
          `Cannot sync weights as a LoRA adapter: the policy has no adapters (set model.lora.r > 0, or sampler.openai.weight_sync: checkpoint): current value is r = 0`,
        );
      }
      const name = `${loraName}-v${version}`;
      const path = `${dir}/${name}`;
      await saveLoraAdapter(path, model);
      await Deno.writeTextFile(
        `${path}/mgrpo_policy.json`,
        JSON.stringify({ policy_version: version }) + "\n",
      );
      await this.post(`${this.v1Url}/load_lora_adapter`, { lora_name: name, lora_path: path });
      const previous = this.model;
      this.model = name;
      if (previous !== this.options.model && previous !== name) {
        // Best effort: a server that cannot unload keeps serving the new adapter all the same.
        await this.post(`${this.v1Url}/unload_lora_adapter`, { lora_name: previous })
          .catch(() => {});
        await Deno.remove(`${dir}/${previous}`, { recursive: true }).catch(() => {});
      }
    } else {
      const path = `${dir}/checkpoint-v${version}`;
      await saveCheckpoint(path, model, tokenizer, { policy_version: version, step: version });
      const url = `${this.rootUrl}${reloadPath.startsWith("/") ? "" : "/"}${reloadPath}`;
      await this.post(url, { model_path: path });
      const previous = `${dir}/checkpoint-v${this.serverVersion}`;
      if (this.serverVersion !== version) {
        await Deno.remove(previous, { recursive: true }).catch(() => {});
      }
    }
    this.serverVersion = version;
    return version;
  }
}

async function ensureDir(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Parses a `/v1/completions` response of one prompt sampled `n` times into completions:
 * ids from `choices[i].token_ids` or from `"token_id:<id>"` logprob tokens, log-probs from
 * `logprobs.token_logprobs`.
 *
 * @throws {TypeError} Naming `url`, the field and its value when something is missing or
 * malformed
 */
export function parseCompletions(
  response: unknown,
  options: { url: string; n: number; vocabSize?: number },
): OpenAiCompletion[] {
  const { url, n } = options;
  const fail = (field: string, why: string, value: unknown): never => {
    throw new TypeError(
      `Cannot use the response of "${url}": field "${field}" ${why}: current value is ${
        show(value)
      }`,
    );
  };
  const body = response as { choices?: unknown };
  if (typeof response !== "object" || response === null || !Array.isArray(body.choices)) {
    return fail("choices", "must be an array", body?.choices ?? response);
  }
  const choices = [...body.choices] as Record<string, unknown>[];
  if (choices.length !== n) {
    return fail("choices", `must hold n = ${n} choices`, `${choices.length} choices`);
  }
  if (choices.every((c) => typeof c?.index === "number")) {
    choices.sort((a, b) => (a.index as number) - (b.index as number));
  }
  return choices.map((choice, i) => {
    const at = `choices[${i}]`;
    const logprobs = choice?.logprobs as Record<string, unknown> | null | undefined;
    if (typeof logprobs !== "object" || logprobs === null) {
      return fail(`${at}.logprobs`, "is missing (the request asks for logprobs: 0)", logprobs);
    }
    const values = logprobs.token_logprobs;
    if (!Array.isArray(values)) {
      return fail(`${at}.logprobs.token_logprobs`, "must be an array", values);
    }
    let tokens: number[];
    if (Array.isArray(choice.token_ids)) {
      tokens = choice.token_ids.map((id, j) =>
        Number.isInteger(id) ? id as number : fail(`${at}.token_ids[${j}]`, "is not an id", id)
      );
    } else {
      const names = logprobs.tokens;
      if (!Array.isArray(names)) return fail(`${at}.logprobs.tokens`, "must be an array", names);
      tokens = names.map((t, j) => {
        const m = typeof t === "string" ? /^token_id:(\d+)$/.exec(t) : null;
        return m ? Number(m[1]) : fail(
          `${at}.logprobs.tokens[${j}]`,
          'is not a "token_id:<id>" token (the server must honour return_tokens_as_token_ids: true, as vLLM does)',
          t,
        );
      });
    }
    if (values.length !== tokens.length) {
      return fail(
        `${at}.logprobs.token_logprobs`,
        `must hold one log-prob per token (${tokens.length})`,
        `${values.length} values`,
      );
    }
    const lps = values.map((v, j) =>
      typeof v === "number" && Number.isFinite(v) && v <= 1e-6
        ? v
        : fail(`${at}.logprobs.token_logprobs[${j}]`, "must be a finite log-prob <= 0", v)
    );
    if (options.vocabSize !== undefined) {
      tokens.forEach((id, j) => {
        if (id >= options.vocabSize!) {
          fail(`${at}.tokens[${j}]`, `must be below the vocabulary size ${options.vocabSize}`, id);
        }
      });
    }
    const finish = choice.finish_reason;
    if (finish !== "stop" && finish !== "length") {
      return fail(`${at}.finish_reason`, 'must be "stop" or "length"', finish);
    }
    return { tokens, logprobs: lps, finishReason: finish };
  });
}
