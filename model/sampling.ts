/**
 * Batched sampling with a KV cache, and teacher-forced log-probabilities of given tokens.
 *
 * Log-probabilities are those of `softmax(logits / temperature)` over the whole vocabulary
 * (top-k / top-p truncation changes which tokens can be drawn, not the reported log-prob),
 * the convention of TRL's GRPOTrainer, so the Sampler's log-probs and the Learner's
 * teacher-forced ones are the same quantity.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KvCache, Transformer } from "./transformer.ts";
import { tokenLogprobs } from "./ops.ts";
import type { Rng } from "../util/rng.ts";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /**
   * Most tokens generated per prompt; a row also stops where its own prompt and completion
   * fill the context.
   */
  maxNewTokens: number;
  /** Softmax temperature (> 0). @default 1 */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables it. @default 1 */
  topP?: number;
  /** Keep only the k most likely tokens; 0 disables it. @default 0 */
  topK?: number;
  /** Pick the most likely token instead of sampling (log-probs then use temperature 1). @default false */
  greedy?: boolean;
  /** Token ids that end a completion (included in its tokens). */
  stopIds: readonly number[];
  /** Id used to left-pad prompts. */
  padId: number;
  /** Random source for sampling. */
  rng: Rng;
}

/** One generated completion. */
export interface Generation {
  /** Generated ids, the stop token included when one ended it. */
  tokens: number[];
  /** `log π(token)` under the sampling policy, one per token. */
  logprobs: number[];
  /**
   * `stop` when a stop token ended it, `length` when it hit its budget: `maxNewTokens`, or
   * the context left after its own prompt.
   */
  finishReason: "stop" | "length";
}

/** Samples a token from one row of logits; returns the id and its log-prob. */
export function sampleToken(
  logits: Float32Array,
  options: { temperature: number; topP: number; topK: number; greedy: boolean; rng: Rng },
): { id: number; logprob: number } {
  const v = logits.length;
  const temperature = options.greedy ? 1 : options.temperature;
  let max = -Infinity;
  for (let i = 0; i < v; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < v; i++) sum += Math.exp((logits[i]! - max) / temperature);
  const logZ = max / temperature + Math.log(sum);
  const logprobOf = (id: number) => logits[id]! / temperature - logZ;
  if (options.greedy) {
    let best = 0;
    for (let i = 1; i < v; i++) if (logits[i]! > logits[best]!) best = i;
    return { id: best, logprob: logprobOf(best) };
  }
  // Candidates sorted by probability when truncation is on; all tokens otherwise.
  let ids: number[] = Array.from({ length: v }, (_, i) => i);
  if (options.topK > 0 || options.topP < 1) {
    ids.sort((a, b) => logits[b]! - logits[a]!);
    if (options.topK > 0) ids = ids.slice(0, options.topK);
    if (options.topP < 1) {
      let mass = 0;
      const kept: number[] = [];
      for (const id of ids) {
        kept.push(id);
        mass += Math.exp(logprobOf(id));
        if (mass >= options.topP) break;
      }
      ids = kept;
    }
  }
  let total = 0;
  const weights = new Float64Array(ids.length);
  for (let j = 0; j < ids.length; j++) {
    weights[j] = Math.exp(logprobOf(ids[j]!));
    total += weights[j]!;
  }
  let u = options.rng.next() * total;
  let chosen = ids[ids.length - 1]!;
  for (let j = 0; j < ids.length; j++) {
    u -= weights[j]!;
    if (u < 0) {
      chosen = ids[j]!;
      break;
    }
  }
  return { id: chosen, logprob: logprobOf(chosen) };
}

/**
 * Generates completions for a batch of prompts with a KV cache. Prompts are left-padded;
 * each row's positions start at 0 at its first real token and padded keys are masked, and
 * each row has its own budget, `min(maxNewTokens, context − its prompt length)`, so a row's
 * result does not depend on the others in the batch. (Greedy rows match exactly; sampled rows
 * draw from the shared `options.rng` in row order, so which draws a row gets depends on the
 * batch, but not the distribution it samples from.)
 *
 * A row that reaches its budget ends with `finishReason: "length"`; until the whole batch is
 * done, a finished row is fed padding, which only its own discarded outputs attend to. The KV
 * cache then grows past the context for short rows; positions stay within it.
 *
 * @throws {RangeError} When a prompt is empty, or leaves no room in the context (its length
 * is at least `max_position_embeddings`), naming the row and its length
 */
export async function generate(
  model: Transformer,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<Generation[]> {
  const b = prompts.length;
  if (b === 0) return [];
  const ctx = model.config.max_position_embeddings;
  prompts.forEach((p, r) => {
    if (p.length === 0) throw new RangeError(`Cannot generate from an empty prompt: row ${r}`);
    if (p.length >= ctx) {
      throw new RangeError(
        `Prompt ${r} too long: must be shorter than the context of ${ctx} tokens: current value is ${p.length} tokens`,
      );
    }
  });
  const promptLen = Math.max(...prompts.map((p) => p.length));
  // Each row's own budget: its tokens must fit in the context after its own prompt.
  const budgets = prompts.map((p) => Math.min(options.maxNewTokens, ctx - p.length));
  const sampling = {
    temperature: options.temperature ?? 1,
    topP: options.topP ?? 1,
    topK: options.topK ?? 0,
    greedy: options.greedy ?? false,
    rng: options.rng,
  };
  const stop = new Set(options.stopIds);
  const pads = prompts.map((p) => promptLen - p.length);
  const out: Generation[] = prompts.map(() => ({
    tokens: [],
    logprobs: [],
    finishReason: "length",
  }));
  const done = budgets.map((n) => n <= 0);

  // Prefill: [B, P] left-padded, causal mask plus padded keys.
  const ids = new Int32Array(b * promptLen).fill(options.padId);
  const positions = new Int32Array(b * promptLen);
  const prefillMask = new Float32Array(b * promptLen * promptLen);
  for (let r = 0; r < b; r++) {
    const p = prompts[r]!;
    ids.set(p, r * promptLen + pads[r]!);
    for (let j = 0; j < promptLen; j++) {
      positions[r * promptLen + j] = Math.max(0, j - pads[r]!);
      for (let s = 0; s < promptLen; s++) {
        if (s > j || s < pads[r]!) prefillMask[(r * promptLen + j) * promptLen + s] = -1e9;
      }
    }
  }
  let cache: KvCache[] = [];
  let logits: tf.Tensor2D;
  {
    const res = tf.tidy(() => {
      const mask = tf.tensor(prefillMask, [b, 1, 1, promptLen, promptLen]);
      const r = model.forward(tf.tensor2d(ids, [b, promptLen], "int32"), {
        positions,
        mask,
        returnCache: true,
        lastOnly: true,
      });
      return { logits: r.logits, flat: r.cache!.flatMap((c) => [c.k, c.v]) };
    });
    logits = res.logits;
    cache = unflatten(res.flat);
  }

  try {
    for (let step = 0; !done.every(Boolean); step++) {
      const rows = (await logits.data()) as Float32Array;
      logits.dispose();
      const v = rows.length / b;
      const next = new Int32Array(b).fill(options.padId);
      for (let r = 0; r < b; r++) {
        if (done[r]) continue;
        const { id, logprob } = sampleToken(rows.subarray(r * v, (r + 1) * v), sampling);
        out[r]!.tokens.push(id);
        out[r]!.logprobs.push(logprob);
        next[r] = id;
        if (stop.has(id)) {
          done[r] = true;
          out[r]!.finishReason = "stop";
        } else if (out[r]!.tokens.length >= budgets[r]!) {
          done[r] = true; // finishReason stays "length"
        }
      }
      if (done.every(Boolean)) {
        logits = tf.zeros([1, 1]);
        break;
      }
      // Decode one token per row at position (its prompt length) + step. A live row's
      // position is below the context since its budget fits there; a finished row's padding
      // may be past it, so it goes at position 0 (its outputs are discarded).
      const s = promptLen + step + 1;
      const pos = new Int32Array(b);
      const maskData = new Float32Array(b * s);
      for (let r = 0; r < b; r++) {
        pos[r] = done[r] ? 0 : promptLen - pads[r]! + step;
        for (let k = 0; k < pads[r]!; k++) maskData[r * s + k] = -1e9;
      }
      const old = cache;
      const res = tf.tidy(() => {
        const r = model.forward(tf.tensor2d(next, [b, 1], "int32"), {
          positions: pos,
          mask: tf.tensor(maskData, [b, 1, 1, 1, s]),
          past: old,
          returnCache: true,
        });
        return { logits: r.logits, flat: r.cache!.flatMap((c) => [c.k, c.v]) };
      });
      for (const c of old) tf.dispose([c.k, c.v]);
      cache = unflatten(res.flat);
      logits = res.logits;
    }
  } finally {
    logits!.dispose();
    for (const c of cache) tf.dispose([c.k, c.v]);
  }
  return out;
}

function unflatten(flat: tf.Tensor[]): KvCache[] {
  const out: KvCache[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    out.push({ k: flat[i] as tf.Tensor4D, v: flat[i + 1] as tf.Tensor4D });
  }
  return out;
}

/**
 * Prompt+completion sequences packed into one right-padded batch for teacher forcing.
 * Position `j` of row `n` predicts token `j + 1` of that sequence.
 */
export interface TokenBatch {
  /** Rows. */
  n: number;
  /** Columns (longest sequence minus one). */
  t: number;
  /** Input ids `[n, t]`. */
  ids: Int32Array;
  /** Target ids `[n, t]` (the input shifted left by one). */
  targets: Int32Array;
  /** 1 where the target is a completion token, else 0, `[n, t]`. */
  mask: Float32Array;
}

/** Packs `prompt ++ completion` rows into a {@link TokenBatch}. */
export function packBatch(
  prompts: readonly (readonly number[])[],
  completions: readonly (readonly number[])[],
  padId: number,
): TokenBatch {
  if (prompts.length !== completions.length) {
    throw new TypeError(
      `Prompts and completions differ in count: ${prompts.length} prompts: current value is ${completions.length}`,
    );
  }
  const n = prompts.length;
  const t = Math.max(1, ...prompts.map((p, i) => p.length + completions[i]!.length - 1));
  const ids = new Int32Array(n * t).fill(padId);
  const targets = new Int32Array(n * t).fill(padId);
  const mask = new Float32Array(n * t);
  for (let r = 0; r < n; r++) {
    const seq = [...prompts[r]!, ...completions[r]!];
    for (let j = 0; j < seq.length - 1; j++) {
      ids[r * t + j] = seq[j]!;
      targets[r * t + j] = seq[j + 1]!;
      if (j + 1 >= prompts[r]!.length) mask[r * t + j] = 1;
    }
  }
  return { n, t, ids, targets, mask };
}

/**
 * Teacher-forced per-token log-probs (and entropies) of a packed batch, `[n, t]` each,
 * differentiable with respect to the model's parameters. Only positions where `batch.mask` is
 * 1 are meaningful (the others hold their log-probs, or 0 when they were not computed):
 * weight the result by the mask. Call inside `tf.tidy`.
 *
 * Only the completion positions reach the LM head when that is cheaper (TRL's
 * `logits_to_keep`): with a real vocabulary the head and the `[M, V]` log-softmax dominate,
 * and a prompt of 300 tokens before 16 sampled ones would cost 20 times the logits. The
 * positions are picked and put back as slices of their runs (a completion is one run per
 * row), exact and differentiable on every backend (wasm has no gradient for `gather`), in
 * memory linear in the batch.
 */
export function batchLogprobs(
  model: Transformer,
  batch: TokenBatch,
  temperature = 1,
): { logp: tf.Tensor2D; entropy: tf.Tensor2D } {
  const nt = batch.n * batch.t;
  const keep: number[] = [];
  for (let i = 0; i < nt; i++) if (batch.mask[i]! > 0) keep.push(i);
  const k = keep.length;
  const ids = tf.tensor2d(batch.ids, [batch.n, batch.t], "int32");
  // Pick when the skipped head work, (nt − k)·V per hidden unit, outweighs k·nt: many
  // positions and a real vocabulary, not the embedded model's 101 ids.
  if (k === 0 || k * nt >= (nt - k) * model.config.vocab_size) {
    const { logits } = model.forward(ids);
    const { logp, entropy } = tokenLogprobs(
      logits,
      tf.tensor1d(batch.targets, "int32"),
      temperature,
    );
    return {
      logp: tf.reshape(tf.mul(logp, tf.tensor1d(batch.mask)), [batch.n, batch.t]) as tf.Tensor2D,
      entropy: tf.reshape(tf.mul(entropy, tf.tensor1d(batch.mask)), [
        batch.n,
        batch.t,
      ]) as tf.Tensor2D,
    };
  }
  // Maximal runs [start, end) of kept positions in the flat [nt] order.
  const runs: [number, number][] = [];
  for (const p of keep) {
    const last = runs[runs.length - 1];
    if (last && last[1] === p) last[1] = p + 1;
    else runs.push([p, p + 1]);
  }
  const targets = Int32Array.from(keep, (p) => batch.targets[p]!);
  const { logits: hidden } = model.forward(ids, { hiddenOnly: true }); // [nt, D]
  const d = hidden.shape[1];
  const kept = tf.concat(runs.map(([a, e]) => tf.slice(hidden, [a, 0], [e - a, d])), 0); // [k, D]
  const { logp, entropy } = tokenLogprobs(
    model.head(kept as tf.Tensor2D),
    tf.tensor1d(targets, "int32"),
    temperature,
  );
  /** `[k]` values back at their positions of `[n, t]`, 0 elsewhere. */
  const spread = (x: tf.Tensor1D): tf.Tensor2D => {
    const parts: tf.Tensor1D[] = [];
    let at = 0, taken = 0;
    for (const [a, e] of runs) {
      if (a > at) parts.push(tf.zeros([a - at]));
      parts.push(tf.slice(x, [taken], [e - a]));
      taken += e - a;
      at = e;
    }
    if (nt > at) parts.push(tf.zeros([nt - at]));
    return tf.reshape(tf.concat(parts, 0), [batch.n, batch.t]);
  };
  return { logp: spread(logp), entropy: spread(entropy) };
}

/** Teacher-forced log-probs of each completion's tokens, read back as arrays. */
export async function completionLogprobs(
  model: Transformer,
  prompts: readonly (readonly number[])[],
  completions: readonly (readonly number[])[],
  options: { padId: number; temperature?: number },
): Promise<number[][]> {
  const batch = packBatch(prompts, completions, options.padId);
  const logp = tf.tidy(() => batchLogprobs(model, batch, options.temperature ?? 1).logp);
  const data = (await logp.data()) as Float32Array;
  logp.dispose();
  return prompts.map((p, r) => {
    const start = p.length - 1;
    return Array.from(
      data.subarray(r * batch.t + start, r * batch.t + start + completions[r]!.length),
    );
  });
}
