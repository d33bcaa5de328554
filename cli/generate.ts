/**
 * `deno task generate`: one completion from a model folder (a Hugging Face model, or a
 * checkpoint of ours), with the KV-cache sampler the Sampler actor uses.
 *
 * ```
 * deno task generate --model runs/x/checkpoint-16 --prompt "Tom has 3 apples..." --chat
 * deno task generate --model ./Qwen2.5-0.5B-Instruct --prompt "1+1=" --greedy --json
 * ```
 *
 * `--json` prints one object: `prompt`, `prompt_ids`, `completion`, `completion_ids`,
 * `logprobs` (of each sampled token, at the sampling temperature) and `finish_reason`.
 * Exit codes: 0 done, 1 the model cannot be used, 2 bad flags, a missing model folder, or a
 * prompt the model cannot take (a character outside its tokenizer, or as many tokens as its
 * context: at least one new token must fit).
 *
 * @module
 */
import { ArgsError, COMMON_FLAGS, type FlagSpec, formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "../training/config.ts";
import { runMain } from "./common.ts";
import { existingModelDir } from "../training/setup.ts";
import { initBackend } from "../model/backend.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { generate } from "../model/sampling.ts";
import { Rng } from "../util/rng.ts";
import { CHATML_TEMPLATE, loadChatTemplate, renderChat } from "../prompts/chat_template.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  model: { type: "string", placeholder: "DIR", help: "Model folder (Hugging Face or ours)" },
  prompt: { type: "string", placeholder: "TEXT", help: "The prompt" },
  chat: {
    type: "boolean",
    help: "Render the prompt as a user turn with the model's chat template (ChatML if none)",
  },
  system: { type: "string", placeholder: "TEXT", help: "With --chat: a system turn first" },
  "max-new-tokens": { type: "string", placeholder: "N", help: "Tokens to sample (default 128)" },
  greedy: { type: "boolean", help: "Take the most likely token at each step" },
  temperature: { type: "string", placeholder: "T", help: "Sampling temperature (default 1)" },
  "top-p": { type: "string", placeholder: "P", help: "Nucleus sampling (default 1)" },
  seed: { type: "string", placeholder: "N", help: "Seed of the sampling RNG (default 0)" },
  json: { type: "boolean", help: "Print one JSON object with ids and log-probs" },
};

const HELP = formatHelp({ ...COMMON_FLAGS, ...FLAGS }, {
  usage:
    "deno task generate --model DIR --prompt TEXT [--chat] [--max-new-tokens N] [--greedy] [--json]",
  summary: "Samples one completion from a model folder and prints it.",
  examples: [
    'deno task generate --model checkpoints/tiny-sft --prompt "Tom has 3 apples." --chat --greedy',
    'deno task generate --model ./Qwen2.5-0.5B-Instruct --prompt "2+2=" --json',
  ],
});

function numberFlag(name: string, value: unknown, min: number, integer: boolean) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new ArgsError(
      `Invalid value for --${name}: must be ${integer ? "an integer" : "a number"} >= ${min}: ` +
        `current value is ${JSON.stringify(value)}`,
    );
  }
  return n;
}

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  const v = args.values;
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof v.model !== "string") throw new ArgsError("Missing flag --model DIR");
  if (typeof v.prompt !== "string") throw new ArgsError("Missing flag --prompt TEXT");
  const maxNewTokens = numberFlag("max-new-tokens", v["max-new-tokens"], 1, true) ?? 128;
  const temperature = numberFlag("temperature", v.temperature, 1e-6, false) ?? 1;
  const topP = numberFlag("top-p", v["top-p"], 1e-6, false) ?? 1;
  const seed = numberFlag("seed", v.seed, 0, true) ?? 0;
  const config = loadConfig(args.config, { overrides: args.overrides });
  await initBackend(config.model.backend, { wasmThreads: config.model.wasm_threads });

  const dir = existingModelDir(v.model, "--model");
  const { model, tokenizer } = await loadCheckpoint(dir, { trainable: false });
  model.limitVocabulary(tokenizer.vocabSize);
  let prompt = v.prompt;
  if (v.chat) {
    const template = tokenizer instanceof CharTokenizer
      ? CHATML_TEMPLATE
      : await loadChatTemplate(dir).catch(() => CHATML_TEMPLATE);
    const messages = [
      ...(typeof v.system === "string" ? [{ role: "system" as const, content: v.system }] : []),
      { role: "user" as const, content: v.prompt },
    ];
    prompt = renderChat(messages, { template, addGenerationPrompt: true });
  }
  const promptIds = promptTokens(tokenizer, prompt, model.config.max_position_embeddings);
  const [gen] = await generate(model, [promptIds], {
    maxNewTokens,
    temperature,
    topP,
    topK: 0,
    greedy: v.greedy === true,
    stopIds: tokenizer.stopIds,
    padId: tokenizer.padId,
    rng: new Rng(seed),
  });
  const completion = tokenizer.decode(gen!.tokens, { skipSpecialTokens: true });
  if (v.json) {
    console.log(JSON.stringify({
      prompt,
      prompt_ids: promptIds,
      completion,
      completion_ids: gen!.tokens,
      logprobs: gen!.logprobs,
      finish_reason: gen!.finishReason,
    }));
  } else {
    console.log(completion);
  }
  model.dispose();
  return 0;
}

if (import.meta.main) await runMain(main);

/**
 * The prompt's ids, or an `ArgsError` naming `--prompt` when the tokenizer cannot encode it or
 * it leaves no room in the context for a new token.
 */
function promptTokens(
  tokenizer: { encode(text: string): number[] },
  prompt: string,
  context: number,
): number[] {
  let ids: number[];
  try {
    ids = tokenizer.encode(prompt);
  } catch (e) {
    throw new ArgsError(`Invalid value for --prompt: ${(e as Error).message}`);
  }
  if (ids.length >= context) {
    throw new ArgsError(
      `Invalid value for --prompt: it must leave room for a new token in the model's context of ${context} tokens: current value is ${ids.length} tokens`,
    );
  }
  return ids;
}
