/**
 * LoRA: low-rank adapters on the attention and MLP projections (Hu et al. 2021), trained while
 * the base weights stay frozen, saved in PEFT's format (`adapter_config.json` +
 * `adapter_model.safetensors`) so that PEFT and vLLM's dynamic LoRA loading read them.
 *
 * A projection `y = x·Wᵀ` becomes `y = x·Wᵀ + (α/r)·x·Aᵀ·Bᵀ` with `A [r, in]` (Kaiming-uniform,
 * as PEFT) and `B [out, r]` (zeros, so a fresh adapter changes nothing). The adapters are plain
 * parameters of the model, `<projection>.lora_A.weight` / `.lora_B.weight` (held transposed
 * like every linear weight), so `exportWeights`, `loadWeights` and `clone` carry them, and the
 * file names are ours with PEFT's prefix `base_model.model.`.
 *
 * The adapter runs as two thin matmuls on the activations, not merged into `W` per forward:
 * merging costs `in·out·r` per projection per forward (r times the projection itself when
 * sampling one token per step) and makes the backward compute the full `in×out` gradient of
 * the merged weight; the thin path costs `tokens·(in+out)·r` each way, under 2% of the
 * projection at Qwen2.5-0.5B's shapes with r = 8.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LoraSettings, Transformer } from "./transformer.ts";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "./safetensors.ts";
import { exists, swapIntoPlace, writeSynced } from "./fs.ts";
import { Rng } from "../util/rng.ts";

/** Projections that can carry adapters (PEFT's `target_modules` names). */
export const LORA_TARGETS: readonly string[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
];

/** PEFT's prefix of adapter tensor names in `adapter_model.safetensors`. */
const PEFT_PREFIX = "base_model.model.";

/** Options of {@linkcode attachLora}. */
export interface AttachLoraOptions {
  /** Rank r. @default 8 */
  r?: number;
  /** α (the update is scaled by α/r). @default 16 */
  alpha?: number;
  /** Dropout on the adapter's input; only 0 is supported. @default 0 */
  dropout?: number;
  /** Projections to adapt. @default all of {@linkcode LORA_TARGETS} */
  targetModules?: readonly string[];
  /** Seed of A's initialisation. @default 0 */
  seed?: number;
}

/** Options of {@linkcode saveLoraAdapter} and {@linkcode loraAdapterFiles}. */
export interface SaveLoraOptions {
  /** `base_model_name_or_path` of `adapter_config.json` (a hub id or folder). @default null */
  baseModelNameOrPath?: string;
}

/** The module of a projection: `mlp` for gate/up/down, else `self_attn`. */
function section(module: string): string {
  return ["gate_proj", "up_proj", "down_proj"].includes(module) ? "mlp" : "self_attn";
}

/** `[base weight, A, B]` parameter names for every adapted projection, layer by layer. */
function adapterNames(model: Transformer, targets: readonly string[]): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (let i = 0; i < model.config.num_hidden_layers; i++) {
    for (const m of targets) {
      const base = `model.layers.${i}.${section(m)}.${m}`;
      out.push([`${base}.weight`, `${base}.lora_A.weight`, `${base}.lora_B.weight`]);
    }
  }
  return out;
}

/** `[in, out]` of a base projection weight (stored `[in, out]`). */
function projectionDims(model: Transformer, name: string, what: string): [number, number] {
  const w = model.params.get(name);
  if (!w || w.rank !== 2) throw new RangeError(`${what}: the model has no projection "${name}"`);
  return w.shape as [number, number];
}

/**
 * Attaches fresh adapters (A Kaiming-uniform as PEFT's `kaiming_uniform_(a=√5)`, B zero) to
 * the target projections and freezes every base weight: the model's
 * {@link Transformer.trainableParams} are then the adapters alone, and its forward (full or
 * with the KV cache) adds `(α/r)·x·Aᵀ·Bᵀ` to each adapted projection.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Transformer } from "./transformer.ts";
 * import { attachLora } from "./lora.ts";
 * const m = Transformer.create({
 *   vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1,
 *   num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16,
 *   rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: true,
 * }, { seed: 1 });
 * attachLora(m, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj"] });
 * const names = [...m.trainableParams.keys()];
 * if (names[0] !== "model.layers.0.self_attn.q_proj.lora_A.weight" || names.length !== 4) {
 *   throw new Error(names.join());
 * }
 * m.dispose();
 * ```
 *
 * @throws {RangeError} For a rank, α or dropout out of range, an unknown target module, or a
 * model that already has adapters. Nothing changes on an error.
 */
export function attachLora(model: Transformer, options: AttachLoraOptions = {}): LoraSettings {
  const r = options.r ?? 8, alpha = options.alpha ?? 16, dropout = options.dropout ?? 0;
  const targets = [...(options.targetModules ?? LORA_TARGETS)];
  const what = "Cannot attach LoRA";
  if (model.lora) {
    throw new RangeError(
      `${what}: the model already has adapters: current value is r = ${model.lora.r}`,
    );
  }
  if (!Number.isInteger(r) || r < 1) {
    throw new RangeError(`${what}: "r" must be an integer >= 1: current value is ${r}`);
  }
  if (!(Number.isFinite(alpha) && alpha > 0)) {
    throw new RangeError(`${what}: "alpha" must be > 0: current value is ${alpha}`);
  }
  if (dropout !== 0) {
    throw new RangeError(
      `${what}: "dropout" must be 0 (not supported): current value is ${dropout}`,
    );
  }
  if (targets.length === 0) throw new RangeError(`${what}: "targetModules" is empty`);
  for (const m of targets) {
    if (!LORA_TARGETS.includes(m)) {
      throw new RangeError(
        `${what}: target module must be one of ${LORA_TARGETS.join(", ")}: current value is ${
          JSON.stringify(m)
        }`,
      );
    }
  }
  if (new Set(targets).size !== targets.length) {
    throw new RangeError(
      `${what}: "targetModules" lists a module twice: current value is ${JSON.stringify(targets)}`,
    );
  }
  const names = adapterNames(model, targets);
  const dims = names.map(([base]) => projectionDims(model, base, what));

  for (const v of model.params.values()) v.trainable = false;
  const rng = new Rng(options.seed ?? 0).fork("lora");
  names.forEach(([, a, b], k) => {
    const [inDim, outDim] = dims[k]!;
    // kaiming_uniform_(A [r, in], a=√5): bound = gain·√(3/fan_in) with gain = √(2/(1+5)).
    const bound = 1 / Math.sqrt(inDim);
    const init = new Float32Array(inDim * r);
    for (let j = 0; j < init.length; j++) init[j] = (rng.next() * 2 - 1) * bound;
    const aInit = tf.tensor2d(init, [inDim, r]);
    model.params.set(a, tf.variable(aInit, true)); // Aᵀ [in, r]
    aInit.dispose(); // the variable holds a copy
    model.params.set(b, tf.variable(tf.zeros([r, outDim]), true)); // Bᵀ [r, out]
  });
  model.lora = { r, alpha, targetModules: targets };
  return model.lora;
}

/**
 * Folds the adapters into the base weights (`W ← W + (α/r)·B·A`), removes them and makes every
 * weight trainable again: the model is then a plain one that `saveHfModel` writes as a full
 * Hugging Face model. Outputs equal the adapted model's up to f32 rounding.
 *
 * @throws {RangeError} When the model has no adapters.
 */
export function mergeLora(model: Transformer): void {
  const lora = model.lora;
  if (!lora) throw new RangeError("Cannot merge LoRA: the model has no adapters");
  const scale = lora.alpha / lora.r;
  const names = adapterNames(model, lora.targetModules);
  tf.tidy(() => {
    for (const [base, a, b] of names) {
      const w = model.params.get(base)!, av = model.params.get(a)!, bv = model.params.get(b)!;
      // Stored transposed: Wᵀ [in, out] += (α/r) · Aᵀ [in, r] · Bᵀ [r, out].
      w.assign(tf.add(w, tf.mul(tf.matMul(av, bv), scale)));
    }
  });
  for (const [, a, b] of names) {
    for (const name of [a, b]) {
      model.params.get(name)!.dispose();
      model.params.delete(name);
    }
  }
  for (const v of model.params.values()) v.trainable = true;
  model.lora = undefined;
}

/** PEFT's `adapter_config.json` for a model's adapters (plain LoRA, no bias, no DoRA). */
export function peftConfig(
  lora: LoraSettings,
  options: SaveLoraOptions = {},
): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: options.baseModelNameOrPath ?? null,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: 0,
    target_modules: lora.targetModules,
    bias: "none",
    lora_bias: false,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/**
 * The two files of a PEFT adapter (`adapter_config.json`, `adapter_model.safetensors` in f32
 * with `lora_A [r, in]` and `lora_B [out, r]`), for {@linkcode saveLoraAdapter} and for
 * checkpoints of LoRA runs.
 *
 * @throws {RangeError} When the model has no adapters.
 */
export async function loraAdapterFiles(
  model: Transformer,
  options: SaveLoraOptions = {},
): Promise<Record<string, Uint8Array>> {
  if (!model.lora) throw new RangeError("Cannot save a LoRA adapter: the model has none");
  const tensors = new Map<string, HostTensor>();
  for (const [, a, b] of adapterNames(model, model.lora.targetModules)) {
    for (const name of [a, b]) tensors.set(PEFT_PREFIX + name, await model.exportWeight(name));
  }
  const enc = new TextEncoder();
  return {
    "adapter_config.json": enc.encode(
      JSON.stringify(peftConfig(model.lora, options), null, 2) + "\n",
    ),
    "adapter_model.safetensors": encodeSafetensors(tensors, { format: "pt" }),
  };
}

/**
 * Writes a model's adapters as a PEFT folder `dir` (replacing one that is there), atomically:
 * into a temporary folder beside it, fsynced, then renamed into place.
 *
 * @throws {RangeError} When the model has no adapters.
 */
export async function saveLoraAdapter(
  dir: string,
  model: Transformer,
  options: SaveLoraOptions = {},
): Promise<void> {
  const files = await loraAdapterFiles(model, options);
  const clean = dir.replace(/\/+$/, "");
  const i = clean.lastIndexOf("/");
  const parent = i < 0 ? "." : clean.slice(0, i) || "/";
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${clean}.tmp-${Deno.pid}-${Date.now()}`;
  await Deno.mkdir(tmp);
  try {
    for (const [name, bytes] of Object.entries(files)) await writeSynced(`${tmp}/${name}`, bytes);
    await swapIntoPlace(tmp, clean, parent);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Whether folder `dir` holds a PEFT adapter (an `adapter_config.json`). */
export async function hasLoraAdapter(dir: string): Promise<boolean> {
  return await exists(`${dir.replace(/\/+$/, "")}/adapter_config.json`);
}

/** Config fields of PEFT variants this forward does not implement, and what they must be. */
const UNSUPPORTED: [field: string, plain: (v: unknown) => boolean, must: string][] = [
  ["bias", (v) => v === undefined || v === "none", 'must be "none"'],
  ["lora_bias", (v) => !v, "must be false"],
  ["use_dora", (v) => !v, "is not supported"],
  ["use_rslora", (v) => !v, "is not supported"],
  ["fan_in_fan_out", (v) => !v, "must be false"],
  ["modules_to_save", (v) => v == null || (Array.isArray(v) && v.length === 0), "must be null"],
  ["layers_to_transform", (v) => v == null, "must be null"],
  ["layer_replication", (v) => v == null, "must be null"],
  ["exclude_modules", (v) => v == null || (Array.isArray(v) && v.length === 0), "must be null"],
  ["target_parameters", (v) => v == null, "must be null"],
  ["trainable_token_indices", (v) => v == null, "must be null"],
  ["alora_invocation_tokens", (v) => v == null, "must be null"],
  ["use_qalora", (v) => !v, "is not supported"],
  ["rank_pattern", (v) => v == null || Object.keys(v as object).length === 0, "must be empty"],
  ["alpha_pattern", (v) => v == null || Object.keys(v as object).length === 0, "must be empty"],
];

/**
 * Attaches the PEFT adapter of folder `dir` to `model` (the base it was trained on) and loads
 * its tensors (f32, f16 or bf16): adapters trainable, base weights frozen. Everything is
 * checked before the model changes.
 *
 * @throws {TypeError} Naming the file and field for a config that is not plain LoRA (another
 * `peft_type`, a bias, DoRA, rsLoRA, per-module ranks, `modules_to_save`, ...) or an
 * unsupported target module; naming the tensor for one that is missing, has a shape other than
 * r and the base model give, or is not an adapter of the config.
 * @throws {RangeError} When the model already has adapters.
 */
export async function loadLoraAdapter(dir: string, model: Transformer): Promise<LoraSettings> {
  const base = dir.replace(/\/+$/, "");
  const configPath = `${base}/adapter_config.json`;
  if (model.lora) {
    throw new RangeError(
      `Cannot load LoRA adapter "${configPath}": the model already has adapters: ` +
        `current value is r = ${model.lora.r}`,
    );
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await Deno.readTextFile(configPath));
  } catch (cause) {
    throw new TypeError(`Cannot load LoRA adapter "${configPath}": ${(cause as Error).message}`, {
      cause,
    });
  }
  const refuse = (field: string, why: string): never => {
    throw new TypeError(
      `Cannot load LoRA adapter "${configPath}": field "${field}" ${why}: current value is ${
        JSON.stringify(config[field])
      }`,
    );
  };
  if (config.peft_type !== "LORA") refuse("peft_type", 'must be "LORA"');
  for (const [field, plain, must] of UNSUPPORTED) {
    if (!plain(config[field])) refuse(field, must);
  }
  const r = config.r, alpha = config.lora_alpha;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1) {
    refuse("r", "must be an integer >= 1");
  }
  if (typeof alpha !== "number" || !(alpha > 0)) refuse("lora_alpha", "must be a number > 0");
  // `lora_dropout` is ignored: dropout acts in training only, outputs are those of dropout 0.
  const raw = typeof config.target_modules === "string"
    ? [config.target_modules]
    : config.target_modules;
  if (
    !Array.isArray(raw) || raw.length === 0 ||
    raw.some((t) => typeof t !== "string" || !LORA_TARGETS.includes(t))
  ) {
    refuse("target_modules", `must list projections of ${LORA_TARGETS.join(", ")}`);
  }
  const targets = raw as string[];
  const rank = r as number;

  const filePath = `${base}/adapter_model.safetensors`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(filePath);
  } catch (cause) {
    throw new TypeError(`Cannot load LoRA adapter "${filePath}": ${(cause as Error).message}`, {
      cause,
    });
  }
  const { tensors } = decodeSafetensors(bytes, filePath);
  const what = `Cannot load LoRA adapter "${filePath}"`;
  const names = adapterNames(model, targets);
  const weights = new Map<string, Float32Array>();
  for (const [w, a, b] of names) {
    const [inDim, outDim] = projectionDims(model, w, what);
    for (const [name, expected] of [[a, [rank, inDim]], [b, [outDim, rank]]] as const) {
      const t = tensors.get(PEFT_PREFIX + name);
      if (!t) throw new TypeError(`${what}: missing tensor "${PEFT_PREFIX + name}"`);
      if (t.shape.join() !== expected.join()) {
        throw new TypeError(
          `${what}: tensor "${PEFT_PREFIX + name}" must have shape [${expected}] ` +
            `(r = ${rank} in adapter_config.json): current value is [${t.shape}]`,
        );
      }
      weights.set(name, t.data);
    }
  }
  for (const name of tensors.keys()) {
    if (!weights.has(name.slice(PEFT_PREFIX.length))) {
      throw new TypeError(
        `${what}: tensor "${name}" is not an adapter of target_modules ${
          JSON.stringify(targets)
        }: current value is an extra tensor`,
      );
    }
  }

  attachLora(model, { r: rank, alpha: alpha as number, targetModules: targets });
  tf.tidy(() => {
    for (const [name, data] of weights) {
      const v = model.params.get(name)!;
      v.assign(tf.transpose(tf.tensor2d(data, [v.shape[1]!, v.shape[0]!]))); // stored transposed
    }
  });
  return model.lora!;
}
