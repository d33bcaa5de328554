import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { Transformer } from "../../model/transformer.ts";
import { makeShortContextModel, maxAbsDiff, SHORT_CONTEXT_CONFIG } from "../helpers.ts";
import { batchLogprobs, completionLogprobs, generate, packBatch } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";

await initBackend("wasm");

const CONFIG = SHORT_CONTEXT_CONFIG;

/** A {@link SHORT_CONTEXT_CONFIG} model with loud weights. */
function model(seed = 3): Transformer {
  return makeShortContextModel(seed);
}

Deno.test("Transformer.forward() with a KV cache equals the full forward pass", () => {
  const m = model();
  const seq = [1, 5, 7, 2, 9, 11, 3, 4];
  const full = tf.tidy(() =>
    m.forward(tf.tensor2d([seq], [1, seq.length], "int32")).logits.dataSync()
  );
  // Prefill 5 tokens, then decode 3 one at a time.
  let { logits, cache } = m.forward(tf.tensor2d([seq.slice(0, 5)], [1, 5], "int32"), {
    returnCache: true,
  });
  const v = CONFIG.vocab_size;
  assert.ok(maxAbsDiff(logits.dataSync(), full.subarray(0, 5 * v)) < 1e-4);
  for (let i = 5; i < seq.length; i++) {
    const r = m.forward(tf.tensor2d([[seq[i]!]], [1, 1], "int32"), {
      past: cache!,
      returnCache: true,
    });
    const diff = maxAbsDiff(r.logits.dataSync(), full.subarray(i * v, (i + 1) * v));
    assert.ok(diff < 1e-4, `position ${i}: max |Δlogit| = ${diff}`);
    logits = r.logits;
    cache = r.cache;
  }
  assert.equal(cache![0]!.k.shape[2], seq.length);
  m.dispose();
});

Deno.test("generate() log-probs equal teacher-forced log-probs of the same tokens", async () => {
  const m = model(5);
  const prompts = [[1, 2, 3, 4, 5, 6], [7, 8], [9, 10, 11]];
  const gens = await generate(m, prompts, {
    maxNewTokens: 10,
    temperature: 0.9,
    stopIds: [0],
    padId: 0,
    rng: new Rng(7),
  });
  const forced = await completionLogprobs(m, prompts, gens.map((g) => g.tokens), {
    padId: 0,
    temperature: 0.9,
  });
  for (let r = 0; r < prompts.length; r++) {
    assert.ok(gens[r]!.tokens.length > 0);
    const diff = maxAbsDiff(gens[r]!.logprobs, forced[r]!);
    assert.ok(diff < 1e-4, `row ${r}: max |Δlogp| = ${diff}`);
  }
  m.dispose();
});

Deno.test("generate() gives a row the same tokens whatever the other rows are", async () => {
  const m = model(9);
  const opts = { maxNewTokens: 6, greedy: true, stopIds: [], padId: 0 };
  const alone = await generate(m, [[3, 4]], { ...opts, rng: new Rng(1) });
  const batched = await generate(m, [[1, 2, 5, 6, 7, 8], [3, 4]], { ...opts, rng: new Rng(1) });
  assert.deepEqual(batched[1]!.tokens, alone[0]!.tokens);
  assert.equal(alone[0]!.finishReason, "length");
  m.dispose();
});

Deno.test("generate() stops at a stop token and does not leak tensors", async () => {
  const m = model(11);
  const before = tf.memory().numTensors;
  // Greedy from a fixed prompt; make the stop set every token so every row stops at once.
  const all = Array.from({ length: CONFIG.vocab_size }, (_, i) => i);
  const gens = await generate(m, [[1, 2], [3]], {
    maxNewTokens: 5,
    greedy: true,
    stopIds: all,
    padId: 0,
    rng: new Rng(1),
  });
  assert.deepEqual(gens.map((g) => [g.tokens.length, g.finishReason]), [[1, "stop"], [1, "stop"]]);
  await generate(m, [[1, 2], [3]], { maxNewTokens: 5, stopIds: [], padId: 0, rng: new Rng(2) });
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
});

Deno.test("batchLogprobs() masks exactly the completion tokens", () => {
  const b = packBatch([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], 0);
  assert.equal(b.t, 4);
  assert.deepEqual(Array.from(b.ids), [1, 2, 3, 5, 4, 7, 8, 0]);
  assert.deepEqual(Array.from(b.targets), [2, 3, 5, 6, 7, 8, 9, 0]);
  assert.deepEqual(Array.from(b.mask), [0, 0, 1, 1, 1, 1, 1, 0]);
  const m = model();
  const { logp, entropy } = tf.tidy(() => batchLogprobs(m, b));
  assert.deepEqual(logp.shape, [2, 4]);
  for (const x of logp.dataSync()) assert.ok(x <= 0);
  for (const x of entropy.dataSync()) assert.ok(x >= 0 && x <= Math.log(CONFIG.vocab_size) + 1e-5);
  tf.dispose([logp, entropy]);
  m.dispose();
});

Deno.test("Transformer.exportWeights() and fromWeights() round-trip exactly", async () => {
  const m = model();
  const w = await m.exportWeights();
  assert.deepEqual(w.get("model.layers.0.self_attn.q_proj.weight")!.shape, [16, 16]);
  assert.deepEqual(w.get("model.layers.0.self_attn.k_proj.weight")!.shape, [8, 16]); // [out, in]
  const m2 = Transformer.fromWeights(CONFIG, w);
  const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
  const a = tf.tidy(() => m.forward(ids).logits.dataSync());
  const b2 = tf.tidy(() => m2.forward(ids).logits.dataSync());
  assert.deepEqual(Array.from(a), Array.from(b2));
  w.delete("model.norm.weight");
  assert.throws(() => Transformer.fromWeights(CONFIG, w), /Missing tensor "model.norm.weight"/);
  m.dispose();
  m2.dispose();
  ids.dispose();
});

Deno.test("Transformer.create() and dispose() leave no tensor behind", () => {
  const before = tf.memory().numTensors;
  const m = Transformer.create(CONFIG, { seed: 12 });
  m.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("limitVocabulary() makes ids beyond the tokenizer impossible, in clones too", async () => {
  const model = Transformer.create({ ...CONFIG, vocab_size: 40 }, { seed: 5 });
  model.limitVocabulary(30);
  const copy = model.clone({ trainable: false });
  const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
  for (const m of [model, copy]) {
    const logits = m.forward(ids).logits.arraySync() as number[][];
    for (const row of logits) {
      assert.ok(row.slice(30).every((x) => x < -1e8), "masked");
      assert.ok(row.slice(0, 30).every((x) => Math.abs(x) < 100), "untouched");
    }
  }
  const gens = await generate(copy, [[1, 2], [3, 4, 5]], {
    maxNewTokens: 40,
    temperature: 5, // flat: unmasked, ids >= 30 would be drawn a quarter of the time
    stopIds: [],
    padId: 0,
    rng: new Rng(1),
  });
  assert.ok(gens.flatMap((g) => g.tokens).every((id) => id < 30));
  model.limitVocabulary(40); // no limit again
  assert.ok(model.forward(ids).logits.arraySync()[0]!.slice(30).every((x) => x > -100));
  ids.dispose();
  model.dispose();
  copy.dispose();
});

Deno.test("batchLogprobs() sends only completion positions to the head, with the full forward's values and gradients", () => {
  // Long prompts, short completions: 2 rows of t = 22, 5 completion tokens, V = 17, so the
  // picked path runs (5·44 < 39·17); the reference is the head on every position.
  const prompt = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => 1 + (from + i) % 16);
  const b = packBatch([prompt(20, 0), prompt(18, 5)], [[3, 4], [5, 6, 7]], 0);
  const m = model();
  const vars = [...m.params.values()];
  const mask = tf.tensor2d(b.mask, [b.n, b.t]);
  const loss = (logp: tf.Tensor2D) => tf.neg(tf.sum(tf.mul(logp, mask))) as tf.Scalar;
  const picked = tf.variableGrads(() => loss(batchLogprobs(m, b).logp), vars);
  const full = tf.variableGrads(() => {
    const { logits } = m.forward(tf.tensor2d(b.ids, [b.n, b.t], "int32"));
    const logp = tf.reshape(
      tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(b.targets, "int32"), 17)), -1),
      [b.n, b.t],
    ) as tf.Tensor2D;
    return loss(logp);
  }, vars);
  const values = tf.tidy(() => batchLogprobs(m, b).logp);
  const reference = tf.tidy(() => {
    const { logits } = m.forward(tf.tensor2d(b.ids, [b.n, b.t], "int32"));
    return tf.sum(
      tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(b.targets, "int32"), 17)),
      -1,
    );
  });
  const got = values.dataSync(), want = reference.dataSync();
  let compared = 0;
  for (let i = 0; i < b.mask.length; i++) {
    if (b.mask[i]! === 0) {
      assert.equal(got[i], 0); // not computed
      continue;
    }
    assert.ok(Math.abs(got[i]! - want[i]!) < 1e-5, `position ${i}: ${got[i]} vs ${want[i]}`);
    compared++;
  }
  assert.equal(compared, 5);
  assert.ok(Math.abs(picked.value.dataSync()[0]! - full.value.dataSync()[0]!) < 1e-4);
  for (const [name, g] of Object.entries(full.grads)) {
    assert.ok(maxAbsDiff(picked.grads[name]!.dataSync(), g.dataSync()) < 1e-4, name);
  }
  tf.dispose([mask, values, reference, picked.value, full.value]);
  tf.dispose([...Object.values(picked.grads), ...Object.values(full.grads)]);
  m.dispose();
});

Deno.test("Transformer.forward() without a tape frees each layer's activations before the next", () => {
  const m = model();
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], "int32");
  // Tensors alive when the forward returns inside a tidy: with per-layer tidies only each
  // layer's output (and the kv pair) survives, not the ~40 intermediates of every layer.
  let inside = 0, taped = 0;
  tf.tidy(() => {
    const before = tf.memory().numTensors;
    m.forward(ids);
    inside = tf.memory().numTensors - before;
  });
  const g = tf.variableGrads(() => {
    const before = tf.memory().numTensors;
    const { logits } = m.forward(ids);
    taped = tf.memory().numTensors - before;
    return tf.sum(logits) as tf.Scalar;
  }, [...m.params.values()]);
  tf.dispose([g.value, ...Object.values(g.grads), ids]);
  m.dispose();
  assert.ok(inside < 25, `${inside} tensors alive after an untaped forward`);
  assert.ok(taped > 2 * inside, `taped ${taped} vs untaped ${inside}`);
});

Deno.test("Transformer.gradientCheckpointing gives the same loss and gradients, with fewer tensors kept", () => {
  const b = packBatch([[1, 2, 3, 4, 5], [6, 7]], [[8, 9], [10, 11, 12]], 0);
  const run = (checkpointing: boolean, trainable: boolean) => {
    const m = model();
    if (!trainable) {
      // A LoRA-like case: the layers' base weights frozen, their norms trainable.
      for (const [n, v] of m.params) {
        if (n.endsWith("_proj.weight")) m.params.set(n, tf.variable(v, false));
      }
    }
    m.gradientCheckpointing = checkpointing;
    const named = [...m.params].filter(([, v]) => v.trainable);
    const vars = named.map(([, v]) => v);
    let kept = 0;
    const { value, grads } = tf.variableGrads(() => {
      const before = tf.memory().numTensors;
      const { logp } = batchLogprobs(m, b);
      kept = tf.memory().numTensors - before;
      return tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(b.mask, [b.n, b.t])))) as tf.Scalar;
    }, vars);
    const out = {
      loss: value.dataSync()[0]!,
      grads: Object.fromEntries(named.map(([n, v]) => [n, grads[v.name]!.dataSync().slice()])),
      kept,
    };
    tf.dispose([value, ...Object.values(grads)]);
    m.dispose();
    return out;
  };
  for (const trainable of [true, false]) {
    const plain = run(false, trainable), ckpt = run(true, trainable);
    assert.equal(ckpt.loss, plain.loss);
    assert.deepEqual(Object.keys(ckpt.grads).sort(), Object.keys(plain.grads).sort());
    for (const [name, g] of Object.entries(plain.grads)) {
      assert.ok(maxAbsDiff(ckpt.grads[name]!, g) < 1e-6, `${name} (trainable base: ${trainable})`);
    }
    assert.ok(ckpt.kept * 2 < plain.kept, `kept ${ckpt.kept} vs ${plain.kept}`);
  }
});
