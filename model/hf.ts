/**
 * Hugging Face model folders: {@link loadHfModel} reads a local `Qwen2ForCausalLM` or
 * `LlamaForCausalLM` folder (`config.json` plus `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`) into a {@link Transformer}; {@link saveHfModel} writes one
 * that transformers' `AutoModelForCausalLM.from_pretrained` loads.
 *
 * What is supported, and what is refused with an error naming the field:
 *
 * - `architectures`: `Qwen2ForCausalLM` (q/k/v bias, no o bias) and `LlamaForCausalLM`
 *   (`attention_bias` puts a bias on q/k/v and o; `mlp_bias: true` is refused).
 * - `hidden_act` must be `silu`; `head_dim` may differ from `hidden_size / num_attention_heads`.
 * - RoPE: `rope_theta` with `rope_scaling` (transformers 4) or `rope_parameters`
 *   (transformers 5) of type `default`, `linear` or `llama3`, computed as transformers does
 *   (see `ropeInverseFrequencies` in `model_config.ts`); `dynamic`, `yarn`, `longrope`, per-layer RoPE and
 *   `partial_rotary_factor` ≠ 1 are refused. Qwen2's `use_sliding_window: true` and any
 *   `quantization_config` are refused.
 * - Weights: safetensors in F32, F16, BF16 or F64, converted to f32, read one tensor at a
 *   time. A missing tensor or a wrong shape is an error naming the tensor and the files
 *   searched; an unexpected extra tensor is an error too (not a warning: a checkpoint with
 *   weights we would drop is a model we would run wrongly), except the ones transformers
 *   ignores itself: `*.rotary_emb.inv_freq`, and `lm_head.weight` when the embeddings are
 *   tied (transformers then uses the embedding matrix).
 *
 * @module
 */
import { Transformer } from "./transformer.ts";
import { exists, swapIntoPlace, writeSynced } from "./fs.ts";
import { headDim, type ModelConfig, ModelConfigSchema, type RopeScaling } from "./model_config.ts";
import { roundToBfloat16, SafetensorsReader, writeSafetensors } from "./safetensors.ts";

/** The Hugging Face architectures {@link loadHfModel} and {@link saveHfModel} handle. */
export const HF_ARCHITECTURES = ["Qwen2ForCausalLM", "LlamaForCausalLM"] as const;

/** One of {@link HF_ARCHITECTURES}. */
export type HfArchitecture = typeof HF_ARCHITECTURES[number];

const MODEL_TYPE: Record<HfArchitecture, string> = {
  Qwen2ForCausalLM: "qwen2",
  LlamaForCausalLM: "llama",
};

/** Defaults of transformers' config classes for fields a `config.json` may leave out. */
const MAX_POSITIONS_DEFAULT: Record<HfArchitecture, number> = {
  Qwen2ForCausalLM: 32768,
  LlamaForCausalLM: 2048,
};

/** RoPE types {@link parseHfConfig} accepts. */
const ROPE_TYPES = ["default", "linear", "llama3"];

/** Special token ids of a Hugging Face model (from `config.json`, then `generation_config.json`). */
export interface HfSpecialTokens {
  /** `bos_token_id`. */
  bosTokenId?: number;
  /** `eos_token_id`, always as a list (Hugging Face allows one id or several). */
  eosTokenIds?: number[];
  /** `pad_token_id`. */
  padTokenId?: number;
}

/** What {@link parseHfConfig} returns. */
export interface HfModelConfig {
  /** Our architecture, validated. */
  config: ModelConfig;
  /** The Hugging Face class it came from. */
  architecture: HfArchitecture;
  /** Token ids named in `config.json`. */
  specialTokens: HfSpecialTokens;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Maps a Hugging Face `config.json` (parsed) onto our {@link ModelConfig}. `source` names the
 * file in errors. Throws a `RangeError` for an unsupported architecture or setting and a
 * `TypeError` for a missing or mistyped field, each naming the field and its value.
 *
 * @example
 * ```ts
 * import { parseHfConfig } from "./hf.ts";
 * const { config, architecture } = parseHfConfig({
 *   architectures: ["LlamaForCausalLM"], vocab_size: 32, hidden_size: 16,
 *   intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
 *   rope_scaling: { rope_type: "linear", factor: 2 },
 * });
 * if (architecture !== "LlamaForCausalLM" || config.attention_bias) throw new Error("bias");
 * if (config.rope_scaling?.rope_type !== "linear") throw new Error("rope");
 * ```
 */
export function parseHfConfig(raw: unknown, source = "config.json"): HfModelConfig {
  const fail = (field: string, what: string, value: unknown, Err = RangeError): never => {
    throw new Err(
      `Cannot load "${source}": field "${field}" ${what}: current value is ${
        JSON.stringify(value)
      }`,
    );
  };
  if (!isObject(raw)) return fail("(root)", "must be a JSON object", raw, TypeError);
  const num = (field: string, fallback?: number): number => {
    const v = raw[field];
    if (v === undefined || v === null) {
      return fallback ?? fail(field, "is required", v ?? null, TypeError);
    }
    return typeof v === "number" ? v : fail(field, "must be a number", v, TypeError);
  };

  // --- architecture ---
  const archs = raw.architectures;
  let architecture: HfArchitecture | undefined;
  const supportedList = HF_ARCHITECTURES.map((a) => `"${a}"`).join(", ");
  if (Array.isArray(archs) && archs.length > 0) {
    if (archs.length === 1 && HF_ARCHITECTURES.includes(archs[0])) architecture = archs[0];
    else fail("architectures", `is not supported (supported: ${supportedList})`, archs);
  } else {
    const byType = HF_ARCHITECTURES.find((a) => MODEL_TYPE[a] === raw.model_type);
    if (!byType) {
      fail(
        "architectures",
        `is missing and "model_type" is not "qwen2" or "llama" (supported: ${supportedList})`,
        archs ?? null,
      );
    }
    architecture = byType;
  }
  const arch = architecture!;

  // --- refused settings ---
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") fail("hidden_act", `is not supported (supported: "silu")`, act);
  if (raw.quantization_config !== undefined && raw.quantization_config !== null) {
    fail("quantization_config", "is not supported (quantized weights)", raw.quantization_config);
  }
  if (arch === "Qwen2ForCausalLM" && raw.use_sliding_window === true) {
    fail("use_sliding_window", "is not supported (sliding-window attention)", true);
  }
  if (arch === "LlamaForCausalLM" && raw.mlp_bias === true) {
    fail("mlp_bias", "is not supported (bias on the MLP projections)", true);
  }

  // --- shapes ---
  const hidden = num("hidden_size");
  const heads = num("num_attention_heads");
  const maxPos = num("max_position_embeddings", MAX_POSITIONS_DEFAULT[arch]);
  const givenHeadDim = raw.head_dim === null ? undefined : raw.head_dim;
  if (givenHeadDim !== undefined && typeof givenHeadDim !== "number") {
    fail("head_dim", "must be a number", givenHeadDim, TypeError);
  }
  const { theta, scaling } = parseRope(raw, maxPos, fail);
  const llamaBias = arch === "LlamaForCausalLM" && raw.attention_bias === true;
  const config = {
    vocab_size: num("vocab_size"),
    hidden_size: hidden,
    intermediate_size: num("intermediate_size"),
    num_hidden_layers: num("num_hidden_layers"),
    num_attention_heads: heads,
    num_key_value_heads: num("num_key_value_heads", heads),
    ...(givenHeadDim !== undefined && givenHeadDim !== hidden / heads
      ? { head_dim: givenHeadDim as number }
      : {}),
    max_position_embeddings: maxPos,
    rope_theta: theta,
    ...(scaling ? { rope_scaling: scaling } : {}),
    rms_norm_eps: num("rms_norm_eps", 1e-6),
    tie_word_embeddings: raw.tie_word_embeddings === true,
    // Qwen2 always has q/k/v bias and no o bias; Llama's attention_bias covers q/k/v and o.
    attention_bias: arch === "Qwen2ForCausalLM" || llamaBias,
    ...(llamaBias ? { o_proj_bias: true } : {}),
  };
  const parsed = ModelConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join(".");
    fail(
      field,
      issue.message,
      issue.path.reduce<unknown>((v, k) => (v as Json)?.[String(k)], config),
    );
  }
  return { config: parsed.data!, architecture: arch, specialTokens: specialTokensOf(raw) };
}

/** RoPE base and scaling, resolved with the precedence of transformers 5. */
function parseRope(
  raw: Json,
  maxPos: number,
  fail: (field: string, what: string, value: unknown, Err?: ErrorConstructor) => never,
): { theta: number; scaling: RopeScaling | null } {
  // transformers 5: `rope_scaling or rope_parameters` (an empty or null rope_scaling defers).
  const legacy = raw.rope_scaling;
  const useLegacy = isObject(legacy) && Object.keys(legacy).length > 0;
  const field = useLegacy ? "rope_scaling" : "rope_parameters";
  const r = useLegacy ? legacy : raw.rope_parameters ?? {};
  if (!isObject(r)) return fail(field, "must be an object or null", r, TypeError);
  if (Object.values(r).some(isObject)) {
    fail(field, "is not supported (RoPE parameters per layer type)", r);
  }
  const theta = r.rope_theta ?? raw.rope_theta ?? 10000;
  if (typeof theta !== "number" || !(theta > 0)) {
    fail(r.rope_theta !== undefined ? `${field}.rope_theta` : "rope_theta", "must be > 0", theta);
  }
  const partial = r.partial_rotary_factor ?? raw.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    fail(
      r.partial_rotary_factor !== undefined
        ? `${field}.partial_rotary_factor`
        : "partial_rotary_factor",
      "is not supported (partial rotary embeddings)",
      partial,
    );
  }
  const type = r.rope_type ?? r.type ?? "default";
  const typeField = `${field}.${r.rope_type !== undefined ? "rope_type" : "type"}`;
  const need = (key: string): number => {
    const v = r[key];
    return typeof v === "number" ? v : fail(`${field}.${key}`, "must be a number", v ?? null);
  };
  switch (type) {
    case "default":
      return { theta: theta as number, scaling: null };
    case "linear":
      return { theta: theta as number, scaling: { rope_type: "linear", factor: need("factor") } };
    case "llama3": {
      // transformers: a top-level original_max_position_embeddings wins, then the dict's,
      // then max_position_embeddings.
      const original = raw.original_max_position_embeddings ??
        r.original_max_position_embeddings ?? maxPos;
      if (typeof original !== "number") {
        fail(`${field}.original_max_position_embeddings`, "must be a number", original);
      }
      return {
        theta: theta as number,
        scaling: {
          rope_type: "llama3",
          factor: need("factor"),
          low_freq_factor: need("low_freq_factor"),
          high_freq_factor: need("high_freq_factor"),
          original_max_position_embeddings: original as number,
        },
      };
    }
    default:
      return fail(
        typeField,
        `is not supported (supported: ${ROPE_TYPES.map((t) => `"${t}"`).join(", ")})`,
        type,
      );
  }
}

function specialTokensOf(raw: Json): HfSpecialTokens {
  const out: HfSpecialTokens = {};
  if (typeof raw.bos_token_id === "number") out.bosTokenId = raw.bos_token_id;
  if (typeof raw.pad_token_id === "number") out.padTokenId = raw.pad_token_id;
  const eos = raw.eos_token_id;
  if (typeof eos === "number") out.eosTokenIds = [eos];
  else if (Array.isArray(eos) && eos.every((e) => typeof e === "number")) out.eosTokenIds = eos;
  return out;
}

/** Options of {@link loadHfModel}. */
export interface LoadHfModelOptions {
  /** Make the weights trainable variables (false for a frozen reference policy). @default true */
  trainable?: boolean;
  /**
   * `bfloat16` rounds every weight to the nearest bfloat16 (what a model loaded with
   * `torch_dtype=torch.bfloat16` holds); arithmetic stays float32 either way.
   * @default "float32"
   */
  dtype?: "float32" | "bfloat16";
  /**
   * Cap `max_position_embeddings` (the RoPE tables hold this many positions: a 128k-context
   * model would otherwise allocate them all). Scaling that depends on the original context
   * (llama3) is resolved before the cap. Default: the config's value.
   */
  maxPositionEmbeddings?: number;
}

/** What {@link loadHfModel} returns. */
export interface LoadedHfModel {
  /** The model, weights in f32. */
  model: Transformer;
  /** Its architecture (the same object as `model.config`). */
  config: ModelConfig;
  /** The Hugging Face class of `config.json`. */
  architecture: HfArchitecture;
  /** `config.json` as read. */
  hfConfig: Record<string, unknown>;
  /** Token ids of `config.json`, overridden by `generation_config.json` where it has them. */
  specialTokens: HfSpecialTokens;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new Error(`Cannot load Hugging Face model: cannot read ${what} "${path}"`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(`Cannot load Hugging Face model: "${path}" is not valid JSON`, {
      cause,
    });
  }
}

/** Whether transformers itself skips this tensor of a checkpoint. */
function ignoredByTransformers(name: string, config: ModelConfig): boolean {
  return name.endsWith("rotary_emb.inv_freq") ||
    (config.tie_word_embeddings && name === "lm_head.weight");
}

/**
 * Loads a local Hugging Face model folder (`Qwen2ForCausalLM` or `LlamaForCausalLM`; see the
 * module doc for what is supported). Weights stream from disk one tensor at a time into the
 * model's variables, so peak memory stays near the model's f32 size. Errors name the folder,
 * the file and the field or tensor.
 *
 * @example
 * ```ts ignore
 * const { model, architecture } = await loadHfModel("models/Qwen2.5-0.5B-Instruct");
 * ```
 */
export async function loadHfModel(
  dir: string,
  options: LoadHfModelOptions = {},
): Promise<LoadedHfModel> {
  const clean = dir.replace(/\/+$/, "");
  const hfConfig = await readJson(`${clean}/config.json`, "config file");
  const parsed = parseHfConfig(hfConfig, `${clean}/config.json`);
  let config = parsed.config;
  if (options.maxPositionEmbeddings !== undefined) {
    const cap = options.maxPositionEmbeddings;
    if (!Number.isInteger(cap) || cap < 1) {
      throw new RangeError(
        `Cannot load Hugging Face model "${clean}": option "maxPositionEmbeddings" must be a ` +
          `positive integer: current value is ${cap}`,
      );
    }
    config = { ...config, max_position_embeddings: Math.min(cap, config.max_position_embeddings) };
  }
  const specialTokens = { ...parsed.specialTokens };
  if (await exists(`${clean}/generation_config.json`)) {
    const gen = await readJson(`${clean}/generation_config.json`, "generation config");
    if (isObject(gen)) Object.assign(specialTokens, specialTokensOf(gen));
  }

  const files = await weightFiles(clean);
  const readers: SafetensorsReader[] = [];
  try {
    const where = new Map<string, SafetensorsReader>();
    for (const file of files) {
      const reader = await SafetensorsReader.open(`${clean}/${file}`);
      readers.push(reader);
      for (const name of reader.entries.keys()) {
        const other = where.get(name);
        if (other) {
          throw new TypeError(
            `Cannot load Hugging Face model "${clean}": tensor "${name}" is in two files: ` +
              `"${other.path}" and "${reader.path}"`,
          );
        }
        where.set(name, reader);
      }
    }
    const searched = files.map((f) => `"${f}"`).join(", ");
    const expected = new Set(Transformer.parameterShapes(config).map(([n]) => n));
    const extra = [...where.keys()].filter((n) =>
      !expected.has(n) && !ignoredByTransformers(n, config)
    );
    if (extra.length > 0) {
      throw new TypeError(
        `Cannot load Hugging Face model "${clean}": ${searched} hold ${extra.length} tensor(s) ` +
          `that a ${parsed.architecture} with this config.json does not have: current value is ` +
          extra.slice(0, 5).map((n) => `"${n}"`).join(", ") + (extra.length > 5 ? ", ..." : ""),
      );
    }
    const model = await Transformer.fromTensorReader(config, async (name, hfShape) => {
      const reader = where.get(name);
      if (!reader) {
        throw new TypeError(
          `Cannot load Hugging Face model "${clean}": tensor "${name}" is missing: searched ${searched}`,
        );
      }
      const shape = reader.entries.get(name)!.shape;
      if (shape.join(",") !== hfShape.join(",")) {
        throw new TypeError(
          `Cannot load Hugging Face model "${clean}": tensor "${name}" in "${reader.path}" has ` +
            `the wrong shape: expected [${hfShape}]: current value is [${shape}]`,
        );
      }
      const { data } = await reader.read(name);
      return options.dtype === "bfloat16" ? roundToBfloat16(data) : data;
    }, options.trainable === undefined ? {} : { trainable: options.trainable });
    return {
      model,
      config: model.config,
      architecture: parsed.architecture,
      hfConfig: hfConfig as Record<string, unknown>,
      specialTokens,
    };
  } finally {
    for (const r of readers) r.close();
  }
}

/** The safetensors files of a folder: the shards of the index, or `model.safetensors`. */
async function weightFiles(dir: string): Promise<string[]> {
  const index = `${dir}/model.safetensors.index.json`;
  if (await exists(index)) {
    const json = await readJson(index, "weight index");
    const map = isObject(json) ? json.weight_map : undefined;
    if (!isObject(map) || !Object.values(map).every((f) => typeof f === "string")) {
      throw new TypeError(
        `Cannot load Hugging Face model "${dir}": "model.safetensors.index.json" has no ` +
          `"weight_map" of tensor names to file names`,
      );
    }
    const files = [...new Set(Object.values(map) as string[])].sort();
    for (const f of files) {
      if (f.includes("/") || f.includes("\\") || !(await exists(`${dir}/${f}`))) {
        throw new Error(
          `Cannot load Hugging Face model "${dir}": shard "${f}" named in ` +
            `model.safetensors.index.json is missing`,
        );
      }
    }
    return files;
  }
  if (await exists(`${dir}/model.safetensors`)) return ["model.safetensors"];
  let found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) found.push(e.name);
  } catch (cause) {
    throw new Error(`Cannot load Hugging Face model "${dir}": cannot list the folder`, { cause });
  }
  found = found.sort();
  throw new Error(
    `Cannot load Hugging Face model "${dir}": no "model.safetensors" or ` +
      `"model.safetensors.index.json" (only safetensors weights are read): current value is ` +
      `[${found.map((f) => `"${f}"`).join(", ")}]`,
  );
}

/** Options of {@link saveHfModel}. */
export interface SaveHfModelOptions {
  /**
   * Tokenizer files to copy in, by file name (`tokenizer.json`, `tokenizer_config.json`,
   * ...); strings are written as UTF-8. @default {}
   */
  tokenizerFiles?: Record<string, Uint8Array | string>;
  /** Weight dtype on disk (`bfloat16` rounds to nearest even). @default "float32" */
  dtype?: "float32" | "bfloat16";
  /**
   * The class to write. Default: `Qwen2ForCausalLM` when the model has q/k/v bias without
   * o bias, else `LlamaForCausalLM`.
   */
  architecture?: HfArchitecture;
  /** `bos_token_id` of `config.json` and `generation_config.json`. */
  bosTokenId?: number;
  /** `eos_token_id` of `config.json` and `generation_config.json`. */
  eosTokenId?: number | number[];
  /** `pad_token_id` of `config.json` and `generation_config.json`. */
  padTokenId?: number;
  /**
   * Extra `generation_config.json` fields (`temperature`, `top_p`, ...). The file is
   * written when this is given or any token id is. @default undefined
   */
  generationConfig?: Record<string, unknown>;
}

/** The architecture that represents `config`'s biases, or an error. */
function architectureFor(config: ModelConfig, wanted?: HfArchitecture): HfArchitecture {
  const qkv = config.attention_bias, o = config.o_proj_bias === true;
  const fits: HfArchitecture[] = [];
  if (qkv && !o) fits.push("Qwen2ForCausalLM");
  if (qkv === o) fits.push("LlamaForCausalLM");
  const chosen = wanted ?? fits[0];
  if (!chosen || !fits.includes(chosen)) {
    throw new RangeError(
      `Cannot save Hugging Face model: ${wanted ?? "no architecture"} cannot hold a model with ` +
        `attention_bias ${qkv} and o_proj_bias ${o} (Qwen2: q/k/v bias only; Llama: ` +
        `attention_bias on q/k/v and o, or none): current value is ${
          JSON.stringify(wanted ?? null)
        }`,
    );
  }
  return chosen;
}

/**
 * The `config.json` object transformers needs to load `config` as `architecture`: every
 * field of the class, RoPE as `rope_theta` + `rope_scaling` (read by transformers 4 and 5).
 */
export function toHfConfig(
  config: ModelConfig,
  options: Pick<
    SaveHfModelOptions,
    "architecture" | "bosTokenId" | "eosTokenId" | "padTokenId" | "dtype"
  > = {},
): Record<string, unknown> {
  const arch = architectureFor(config, options.architecture);
  const c = config;
  const out: Record<string, unknown> = {
    architectures: [arch],
    model_type: MODEL_TYPE[arch],
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
  };
  if (arch === "LlamaForCausalLM" || c.head_dim !== undefined) out.head_dim = headDim(c);
  Object.assign(out, {
    hidden_act: "silu",
    max_position_embeddings: c.max_position_embeddings,
    initializer_range: 0.02,
    rms_norm_eps: c.rms_norm_eps,
    use_cache: true,
    rope_theta: c.rope_theta,
    rope_scaling: c.rope_scaling ?? null,
    tie_word_embeddings: c.tie_word_embeddings,
    attention_dropout: 0.0,
  });
  if (arch === "LlamaForCausalLM") {
    Object.assign(out, { attention_bias: c.attention_bias, mlp_bias: false, pretraining_tp: 1 });
  } else {
    Object.assign(out, {
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: c.num_hidden_layers,
    });
  }
  if (options.bosTokenId !== undefined) out.bos_token_id = options.bosTokenId;
  if (options.eosTokenId !== undefined) out.eos_token_id = options.eosTokenId;
  if (options.padTokenId !== undefined) out.pad_token_id = options.padTokenId;
  out.torch_dtype = options.dtype ?? "float32";
  return out;
}

/** Files {@link saveHfModel} writes itself; tokenizer files may not use these names. */
const OWN_FILES = new Set([
  "config.json",
  "model.safetensors",
  "model.safetensors.index.json",
  "generation_config.json",
]);

/**
 * Saves `model` as a Hugging Face folder `dir`: `config.json` ({@link toHfConfig}),
 * `model.safetensors` (metadata `{"format": "pt"}`, f32 unless `dtype` says `bfloat16`,
 * written tensor by tensor), `generation_config.json` when token ids or generation fields are
 * given, and the tokenizer files. Atomic like `saveCheckpoint`: the files are written and
 * fsynced in `<dir>.tmp-<pid>-<ms>`, an existing `dir` is moved aside to
 * `<dir>.old-<pid>-<ms>`, the new folder renamed into place, the old one deleted.
 *
 * @example
 * ```ts ignore
 * await saveHfModel("out/my-qwen", model, {
 *   tokenizerFiles: { "tokenizer.json": await Deno.readFile("tok/tokenizer.json") },
 *   eosTokenId: 151645,
 * });
 * ```
 */
export async function saveHfModel(
  dir: string,
  model: Transformer,
  options: SaveHfModelOptions = {},
): Promise<void> {
  const config = toHfConfig(model.config, options);
  const tokenizerFiles = options.tokenizerFiles ?? {};
  for (const name of Object.keys(tokenizerFiles)) {
    if (OWN_FILES.has(name) || name.includes("/") || name.includes("\\") || name.startsWith(".")) {
      throw new RangeError(
        `Cannot save Hugging Face model "${dir}": tokenizer file name must be a plain file name ` +
          `other than ${[...OWN_FILES].join(", ")}: current value is "${name}"`,
      );
    }
  }
  const clean = dir.replace(/\/+$/, "");
  const slash = Math.max(clean.lastIndexOf("/"), clean.lastIndexOf("\\"));
  const parent = slash < 0 ? "." : slash === 0 ? clean.slice(0, 1) : clean.slice(0, slash);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${clean}.tmp-${Deno.pid}-${Date.now()}`;
  await Deno.mkdir(tmp, { recursive: true });
  const enc = new TextEncoder();
  const json = (v: unknown) => enc.encode(JSON.stringify(v, null, 2) + "\n");
  try {
    await writeSynced(`${tmp}/config.json`, json(config));
    const shapes = Transformer.hfParameterShapes(model.config);
    await writeSafetensors(
      `${tmp}/model.safetensors`,
      shapes,
      async (name) => (await model.exportWeight(name)).data,
      { dtype: options.dtype === "bfloat16" ? "BF16" : "F32", metadata: { format: "pt" } },
    );
    const tokens: Record<string, unknown> = {};
    if (options.bosTokenId !== undefined) tokens.bos_token_id = options.bosTokenId;
    if (options.eosTokenId !== undefined) tokens.eos_token_id = options.eosTokenId;
    if (options.padTokenId !== undefined) tokens.pad_token_id = options.padTokenId;
    if (options.generationConfig || Object.keys(tokens).length > 0) {
      await writeSynced(
        `${tmp}/generation_config.json`,
        json({ ...tokens, ...options.generationConfig }),
      );
    }
    for (const [name, content] of Object.entries(tokenizerFiles)) {
      await writeSynced(
        `${tmp}/${name}`,
        typeof content === "string" ? enc.encode(content) : content,
      );
    }
    await swapIntoPlace(tmp, clean, parent);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
