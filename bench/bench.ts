/**
 * `deno task bench`: throughput of the embedded default's hot paths on this machine, on
 * problems of the default config's task —
 * the Learner's training step (forward + backward + AdamW on a packed batch), the Sampler
 * (batched KV-cache generation) and the Verifier — printed as a table and one JSON line.
 *
 * Figures are medians of `--repeats` timed runs after one warm-up run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { type BackendName, initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { batchLogprobs, generate, packBatch } from "../model/sampling.ts";
import { AdamW } from "../model/optimizer.ts";
import { Rng } from "../data/rng.ts";
import { makeProblems, workedSolution } from "../data/arithmetic.ts";
import { verifyIntegerAnswer } from "../verifiers/integer_answer.ts";
import { arithmeticOptions, formatTable, promptRenderer } from "../cli/common.ts";
import { loadConfig } from "../cli/config.ts";
import { timeIt as timeRepeats } from "./timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "wasm" },
    repeats: { type: "string", default: "3" },
    rows: { type: "string", default: "64" },
  },
  strict: true,
});
const repeats = Number(values.repeats), rows = Number(values.rows);
const timeIt = (f: () => Promise<void> | void) => timeRepeats(async () => await f(), repeats);

const backend = await initBackend(values.backend as BackendName);
const tokenizer = new CharTokenizer();
const model = Transformer.create({ ...TINY_MODEL_CONFIG, vocab_size: tokenizer.vocabSize }, {
  seed: 1,
});
// Problems and prompts of the embedded default config.
const config = loadConfig(undefined);
const render = promptRenderer(config.prompts);
const problems = makeProblems(7, rows, arithmeticOptions(config.task));
const prompts = problems.map((p) => tokenizer.encode(render(p.question)));
const completions = problems.map((
  p,
) => [...tokenizer.encode(workedSolution(p)), tokenizer.imEndId]);
const batch = packBatch(prompts, completions, tokenizer.padId);
const optimizer = new AdamW(model.params, { weightDecay: 0 });
const vars = [...model.params.values()];
const nameOf = new Map([...model.params].map(([n, v]) => [v.name, n]));

// Learner: one optimizer step over the packed batch.
const learnerS = await timeIt(async () => {
  const loss = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
      vars,
    );
    const named: Record<string, tf.Tensor> = {};
    for (const [id, g] of Object.entries(grads)) named[nameOf.get(id)!] = g;
    optimizer.step(named, 1e-4);
    return value;
  });
  await loss.data();
  loss.dispose();
});
const learnerTokens = batch.n * batch.t;
// 6 · params · tokens (forward + backward of the linear layers) + attention 12 · L · D · T² per row.
const c = model.config;
const flops = 6 * model.numParameters * learnerTokens +
  12 * c.num_hidden_layers * c.hidden_size * batch.t * batch.t * batch.n;

// Sampler: `rows` completions of up to 32 tokens with the KV cache.
let sampled = 0;
const samplerS = await timeIt(async () => {
  const gens = await generate(model, prompts, {
    maxNewTokens: 32,
    stopIds: [],
    padId: tokenizer.padId,
    rng: new Rng(1),
  });
  sampled = gens.reduce((a, g) => a + g.tokens.length, 0);
});

// Verifier: checks per second on worked solutions.
const texts = problems.map((p) => workedSolution(p));
const verifierS = await timeIt(() => {
  for (let i = 0; i < 50; i++) {
    for (let j = 0; j < texts.length; j++) verifyIntegerAnswer(texts[j]!, problems[j]!.answer);
  }
  return Promise.resolve();
});

const result = {
  backend,
  parameters: model.numParameters,
  learner_tokens_per_s: learnerTokens / learnerS,
  learner_gflops: flops / learnerS / 1e9,
  sampler_tokens_per_s: sampled / samplerS,
  verifier_checks_per_s: (50 * texts.length) / verifierS,
};
console.log(formatTable(["measure", "value", "detail"], [
  ["learner step", `${learnerS.toFixed(2)} s`, `${batch.n} rows x ${batch.t} tokens, AdamW`],
  [
    "learner tokens/s",
    result.learner_tokens_per_s.toFixed(0),
    `model GFLOP/s ${result.learner_gflops.toFixed(2)}`,
  ],
  [
    "sampler tokens/s",
    result.sampler_tokens_per_s.toFixed(0),
    `${rows} rows x 32 new tokens, KV cache`,
  ],
  ["verifier checks/s", result.verifier_checks_per_s.toFixed(0), "integer answer after </think>"],
]));
console.log(JSON.stringify(result));
