/**
 * LoRA: low-rank adapters on the attention and MLP projections (Hu et al. 2021), trained while
 * the base weights stay frozen, saved in PEFT's format (`adapter_config.json` +
 * `adapter_model.safetensors`) so that PEFT and vLLM's dynamic LoRA loading read them.
 *
 * A projection `y = x·W` becomes `y = x·W + (α/r)·x·Aᵀ·Bᵀ` with `A [r, in]` (Kaiming-uniform,
 * as PEFT) and `B [out, r]` (zeros, so a fresh adapter changes nothing). The adapter is applied
 * as two thin matmuls on the activations rather than merged into `W`: merging costs
 * `in·out·r` per projection per forward, which in KV-cache sampling (one token per forward)
 * is r times the projection itself; the thin path costs `tokens·(in+out)·r`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LoraSettings, Transformer } from "./transformer.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import { swapIntoPlace, writeSynced } from "./fs.ts";
import { Rng } from "../data/rng.ts";

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
  /** Projections to adapt. @default all of {@linkcode LORA_TARGETS} */
  targetModules?: readonly string[];
  /** Seed of A's initialisation. @default 0 */
  seed?: number;
}

function section(module: string): string {
  return module.endsWith("_proj") && ["gate_proj", "up_proj", "down_proj"].includes(module)
    ? "mlp"
    : "self_attn";
}

/** The adapter parameter names of a model's settings, `[A, B]` per adapted projection. */
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

/**
 * Attaches fresh adapters (A Kaiming-uniform, B zero) and freezes every base weight: the
 * model's {@link Transformer.trainableParams} are then the adapters alone.
 *
 * @throws {RangeError} For a rank or α out of range, an unknown target, or a model that
 * already has adapters.
 */
export function attachLora(model: Transformer, options: AttachLoraOptions = {}): LoraSettings {
  const r = options.r ?? 8, alpha = options.alpha ?? 16;
  const targets = [...(options.targetModules ?? LORA_TARGETS)];
  const what = "Cannot attach LoRA";
  if (model.lora) throw new RangeError(`${what}: the model already has adapters`);
  if (!Number.isInteger(r) || r < 1) {
    throw new RangeError(`${what}: "r" must be an integer >= 1: current value is ${r}`);
  }
  if (!(Number.isFinite(alpha) && alpha > 0)) {
    throw new RangeError(`${what}: "alpha" must be > 0: current value is ${alpha}`);
  }
  for (const m of targets) {
    if (!LORA_TARGETS.includes(m)) {
      throw new RangeError(
        `${what}: target module "${m}" is not a projection (known: ${
          LORA_TARGETS.join(", ")
        }): current value is ${JSON.stringify(m)}`,
      );
    }
  }
  for (const v of model.params.values()) v.trainable = false;
  const rng = new Rng(options.seed ?? 0).fork("lora");
  for (const [base, a, b] of adapterNames(model, targets)) {
    const w = model.params.get(base);
    if (!w) throw new RangeError(`${what}: the model has no parameter "${base}"`);
    const [inDim, outDim] = w.shape as [number, number]; // stored [in, out]
    const bound = 1 / Math.sqrt(inDim); // kaiming_uniform_(a=√5), as PEFT
    const init = new Float32Array(inDim * r);
    for (let k = 0; k < init.length; k++) init[k] = (rng.next() * 2 - 1) * bound;
    model.params.set(a, tf.variable(tf.tensor2d(init, [inDim, r]), true)); // Aᵀ [in, r]
    model.params.set(b, tf.variable(tf.zeros([r, outDim]), true)); // Bᵀ [r, out]
  }
  model.lora = { r, alpha, targetModules: targets };
  return model.lora;
}

/** PEFT's `adapter_config.json` for a model's adapters. */
export function peftConfig(
  lora: LoraSettings,
  options: { baseModelNameOrPath?: string } = {},
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
    fan_in_fan_out: false,
    inference_mode: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
  };
}

/**
 * The two files of a PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`), for
 * {@linkcode saveLoraAdapter} and for checkpoints of LoRA runs.
 *
 * @throws {RangeError} When the model has no adapters.
 */
export async function loraAdapterFiles(
  model: Transformer,
  options: { baseModelNameOrPath?: string } = {},
): Promise<Record<string, Uint8Array>> {
  if (!model.lora) throw new RangeError("Cannot save a LoRA adapter: the model has none");
  const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
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

/** Writes a model's adapters as a PEFT folder `dir`, atomically (temporary folder, rename). */
export async function saveLoraAdapter(
  dir: string,
  model: Transformer,
  options: { baseModelNameOrPath?: string } = {},
): Promise<void> {
  const clean = dir.replace(/\/+$/, "");
  const i = clean.lastIndexOf("/");
  const parent = i < 0 ? "." : clean.slice(0, i) || "/";
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${clean}.tmp-${Deno.pid}-${Date.now()}`;
  await Deno.mkdir(tmp);
  try {
    for (const [name, bytes] of Object.entries(await loraAdapterFiles(model, options))) {
      await writeSynced(`${tmp}/${name}`, bytes);
    }
    await swapIntoPlace(tmp, clean, parent);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Whether a folder holds a PEFT adapter. */
export async function hasLoraAdapter(dir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dir}/adapter_config.json`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Attaches the PEFT adapter of folder `dir` to `model` (whose base weights it was trained on)
 * and loads its tensors; base weights are frozen, adapters trainable.
 *
 * @throws {TypeError} Naming the file and field for a config that is not plain LoRA (another
 * `peft_type`, a `bias`, DoRA, rsLoRA, `fan_in_fan_out`), a missing tensor or a wrong shape.
 */
export async function loadLoraAdapter(dir: string, model: Transformer): Promise<LoraSettings> {
  const base = dir.replace(/\/+$/, "");
  const configPath = `${base}/adapter_config.json`;
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
  if ((config.bias ?? "none") !== "none") refuse("bias", 'must be "none"');
  if (config.use_dora === true) refuse("use_dora", "is not supported");
  if (config.use_rslora === true) refuse("use_rslora", "is not supported");
  if (config.fan_in_fan_out === true) refuse("fan_in_fan_out", "must be false");
  const r = config.r, alpha = config.lora_alpha;
  if (typeof r !== "number") refuse("r", "must be a number");
  if (typeof alpha !== "number") refuse("lora_alpha", "must be a number");
  const targets = typeof config.target_modules === "string"
    ? [config.target_modules]
    : config.target_modules;
  if (!Array.isArray(targets) || targets.some((t) => !LORA_TARGETS.includes(t))) {
    refuse("target_modules", `must list projections of ${LORA_TARGETS.join(", ")}`);
  }
  const filePath = `${base}/adapter_model.safetensors`;
  const { tensors } = decodeSafetensors(await Deno.readFile(filePath), filePath);
  attachLora(model, { r: r as number, alpha: alpha as number, targetModules: targets as string[] });
  const weights: Record<string, Float32Array> = {};
  for (const [, a, b] of adapterNames(model, targets as string[])) {
    for (const name of [a, b]) {
      const t = tensors.get(PEFT_PREFIX + name);
      const v = model.params.get(name)!;
      if (!t) {
        throw new TypeError(
          `Cannot load LoRA adapter "${filePath}": missing tensor "${PEFT_PREFIX + name}"`,
        );
      }
      const expected = [v.shape[1]!, v.shape[0]!]; // stored transposed
      if (t.shape.join() !== expected.join()) {
        throw new TypeError(
          `Cannot load LoRA adapter "${filePath}": tensor "${PEFT_PREFIX + name}" must have ` +
            `shape [${expected}]: current value is [${t.shape}]`,
        );
      }
      weights[name] = t.data;
    }
  }
  tf.tidy(() => {
    for (const [name, data] of Object.entries(weights)) {
      const v = model.params.get(name)!;
      v.assign(tf.transpose(tf.tensor2d(data, [v.shape[1]!, v.shape[0]!])));
    }
  });
  return model.lora!;
}
