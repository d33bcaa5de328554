import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  AdaptiveKlController,
  explainedVariance,
  gae,
  gaeBatch,
  klPerToken,
  ppoAdvantages,
  PpoConfigSchema,
  ppoPolicyLoss,
  type PpoPolicyLossInputs,
  type PpoPolicyLossOptions,
  tokenRewards,
  valueLoss,
  type ValueLossInputs,
  whiten,
} from "../../../algorithms/ppo/mod.ts";

tf.enableProdMode();
await tf.setBackend("cpu");

function assertClose(actual: number, expected: number, tol = 1e-6, label = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${label} expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

function assertAllClose(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) assertClose(actual[i]!, expected[i]!, tol, `[${i}]`);
}

function assertRaggedClose(actual: number[][], expected: number[][], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "rows");
  for (let i = 0; i < expected.length; i++) assertAllClose(actual[i]!, expected[i]!, tol);
}

function value(t: tf.Tensor): number {
  return t.dataSync()[0]!;
}

// --- config ---

Deno.test("PpoConfigSchema fills TRL's defaults", () => {
  assert.deepEqual(PpoConfigSchema.parse({}), {
    gamma: 1.0,
    lam: 0.95,
    cliprange: 0.2,
    cliprange_value: 0.2,
    vf_coef: 0.1,
    kl_coef: 0.05,
    kl_estimator: "k1",
    adaptive_kl: false,
    target_kl: 6.0,
    kl_horizon: 10000,
    kl_in_loss: false,
    whiten_advantages: true,
    ppo_epochs: 4,
    num_mini_batches: 1,
    value_lr: 3e-4,
    value_max_grad_norm: 1,
    value_model: "separate",
    loss_type: "token_mean",
  });
  assert.equal(PpoConfigSchema.parse({ kl_estimator: "k3" }).kl_estimator, "k3");
  assert.throws(() => PpoConfigSchema.parse({ value_model: "shared" }));
});

Deno.test("PpoConfigSchema rejects out-of-range values and unknown fields", () => {
  assert.throws(() => PpoConfigSchema.parse({ gamma: 1.5 }));
  assert.throws(() => PpoConfigSchema.parse({ lam: -0.1 }));
  assert.throws(() => PpoConfigSchema.parse({ cliprange: 0 }));
  assert.throws(() => PpoConfigSchema.parse({ cliprange_value: 0 }));
  assert.throws(() => PpoConfigSchema.parse({ kl_coef: -1 }));
  assert.throws(() => PpoConfigSchema.parse({ kl_estimator: "k2" }));
  assert.throws(() => PpoConfigSchema.parse({ ppo_epochs: 0 }));
  assert.throws(() => PpoConfigSchema.parse({ ppo_epochs: 1.5 }));
  assert.throws(() => PpoConfigSchema.parse({ value_model: "tied" }));
  assert.throws(() => PpoConfigSchema.parse({ loss_type: "dapo" }));
  assert.throws(() => PpoConfigSchema.parse({ whiten_advantage: true }));
});

// --- rewards ---

Deno.test("klPerToken() computes k1 and k3 exactly", () => {
  // ref - logp = [-0.5, 1]
  assertAllClose(klPerToken([-1, -2], [-1.5, -1], { estimator: "k1" }), [0.5, -1], 1e-15);
  // k3 = exp(-0.5) + 0.5 - 1 = 0.1065307, exp(1) - 1 - 1 = 0.7182818
  assertAllClose(
    klPerToken([-1, -2], [-1.5, -1], { estimator: "k3" }),
    [0.10653065971263342, 0.7182818284590451],
    1e-15,
  );
  // Identical policies: both estimators are 0.
  assert.deepEqual(klPerToken([-3], [-3], { estimator: "k3" }), [0]);
});

Deno.test("klPerToken() rejects mismatched lengths and unknown estimators", () => {
  assert.throws(
    () => klPerToken([-1, -2], [-1], { estimator: "k1" }),
    new TypeError(
      'Cannot compute the per-token KL: "refLogp" must have the length of "logp" (2): current length is 1',
    ),
  );
  assert.throws(
    () => klPerToken([-1], [-1], { estimator: "k2" as "k1" }),
    new RangeError('Unknown KL estimator: "k2" (expected "k1" or "k3")'),
  );
});

Deno.test("tokenRewards() puts -β·KL on every token and the score on the last one", () => {
  const { rewards, keep } = tokenRewards(
    [1, null, 0.5, NaN, 2],
    [[0.1, -0.2, 0.3], [0.5, 0.5], [0.2], [0.1], []],
    { klCoef: 0.05 },
  );
  assertRaggedClose(rewards, [
    [-0.005, 0.01, -0.015 + 1], // -0.05 · [0.1, -0.2, 0.3], + 1 at the end
    [0, 0], // null score: skipped
    [-0.01 + 0.5], // one token carries both
    [0], // NaN score: skipped
    [], // no token to carry the score
  ], 1e-12);
  assert.deepEqual(keep, [true, false, true, false, false]);
});

Deno.test("tokenRewards() rejects mismatched rows and a negative β", () => {
  assert.throws(
    () => tokenRewards([1, 2], [[0]], { klCoef: 0.1 }),
    new TypeError(
      'Cannot compute token rewards: "kls" must have one row per score (2): current length is 1',
    ),
  );
  assert.throws(
    () => tokenRewards([1], [[0]], { klCoef: -0.1 }),
    new RangeError('Cannot compute token rewards: "klCoef" must be >= 0: current value is -0.1'),
  );
});

Deno.test("AdaptiveKlController.update() follows Ziegler et al.'s proportional rule", () => {
  const ctl = new AdaptiveKlController({ initKlCoef: 0.05, target: 6, horizon: 10000 });
  assert.equal(ctl.value, 0.05);
  // KL 9: e = clip(9/6 - 1 = 0.5, ±0.2) = 0.2; mult = 1 + 0.2 · 1000/10000 = 1.02; β = 0.051
  assertClose(ctl.update(9, 1000), 0.051, 1e-15);
  assertClose(ctl.value, 0.051, 1e-15);
  // KL 5.4: e = 5.4/6 - 1 = -0.1 (not clipped); mult = 1 - 0.1 · 500/10000 = 0.995; β = 0.050745
  assertClose(ctl.update(5.4, 500), 0.050745, 1e-15);
  // Far below target: e clipped to -0.2; mult = 1 - 0.2 · 10000/10000 = 0.8
  assertClose(ctl.update(0, 10000), 0.050745 * 0.8, 1e-15);
});

Deno.test("AdaptiveKlController rejects bad settings and readings", () => {
  assert.throws(
    () => new AdaptiveKlController({ initKlCoef: 0.1, target: 0, horizon: 10 }),
    new RangeError(
      'Cannot create the adaptive KL controller: "target" must be > 0: current value is 0',
    ),
  );
  const ctl = new AdaptiveKlController({ initKlCoef: 0.1, target: 6, horizon: 10 });
  assert.throws(
    () => ctl.update(NaN, 1),
    new RangeError(
      'Cannot update the adaptive KL controller: "currentKl" must be finite: current value is NaN',
    ),
  );
  assert.equal(ctl.value, 0.1);
});

// --- advantages ---

Deno.test("gae() matches a hand-computed 4-token recursion with γ = 0.9, λ = 0.8", () => {
  // r = [0.5, -0.2, 0.1, 1.0], V = [0.3, 0.4, 0.2, 0.6], γλ = 0.72, V_4 = 0:
  // t=3: δ = 1.0 + 0.9·0   - 0.6 =  0.40;  Â = 0.40
  // t=2: δ = 0.1 + 0.9·0.6 - 0.2 =  0.44;  Â = 0.44 + 0.72·0.40     =  0.728
  // t=1: δ = -0.2 + 0.9·0.2 - 0.4 = -0.42; Â = -0.42 + 0.72·0.728   =  0.10416
  // t=0: δ = 0.5 + 0.9·0.4 - 0.3 =  0.56;  Â = 0.56 + 0.72·0.10416  =  0.6349952
  // R = Â + V = [0.9349952, 0.50416, 0.928, 1.0]
  const { advantages, returns } = gae([0.5, -0.2, 0.1, 1.0], [0.3, 0.4, 0.2, 0.6], {
    gamma: 0.9,
    lam: 0.8,
  });
  assertAllClose(advantages, [0.6349952, 0.10416, 0.728, 0.4], 1e-12);
  assertAllClose(returns, [0.9349952, 0.50416, 0.928, 1.0], 1e-12);
});

Deno.test("gae() reduces to Monte Carlo returns at λ = 1 and one-step TD at λ = 0", () => {
  const r = [1, 2, 3];
  const v = [0.5, 0.25, 2];
  // λ = 1, γ = 0.5: R_t = Σ γ^k r_{t+k} = [1 + 1 + 0.75, 2 + 1.5, 3]
  assertAllClose(gae(r, v, { gamma: 0.5, lam: 1 }).returns, [2.75, 3.5, 3], 1e-12);
  // λ = 0: Â_t = δ_t = r_t + γ V_{t+1} - V_t
  assertAllClose(
    gae(r, v, { gamma: 0.5, lam: 0 }).advantages,
    [1 + 0.125 - 0.5, 2 + 1 - 0.25, 3 - 2],
    1e-12,
  );
  assert.deepEqual(gae([], [], { gamma: 1, lam: 1 }), { advantages: [], returns: [] });
});

Deno.test("gaeBatch() runs gae() on each ragged row", () => {
  const out = gaeBatch([[0.5, -0.2, 0.1, 1.0], [2]], [[0.3, 0.4, 0.2, 0.6], [1.5]], {
    gamma: 0.9,
    lam: 0.8,
  });
  assertRaggedClose(out.advantages, [[0.6349952, 0.10416, 0.728, 0.4], [0.5]], 1e-12);
  assertRaggedClose(out.returns, [[0.9349952, 0.50416, 0.928, 1.0], [2]], 1e-12);
});

Deno.test("gae() and gaeBatch() reject bad lengths and out-of-range γ, λ", () => {
  assert.throws(
    () => gae([1, 2], [1], { gamma: 1, lam: 1 }),
    new TypeError(
      'Cannot compute GAE: "values" must have the length of "rewards" (2): current length is 1',
    ),
  );
  assert.throws(
    () => gae([1], [1], { gamma: 1.1, lam: 1 }),
    new RangeError('Cannot compute GAE: "gamma" must be in [0, 1]: current value is 1.1'),
  );
  assert.throws(
    () => gae([1], [1], { gamma: 1, lam: NaN }),
    new RangeError('Cannot compute GAE: "lam" must be in [0, 1]: current value is NaN'),
  );
  assert.throws(
    () => gaeBatch([[1], [2]], [[1]], { gamma: 1, lam: 1 }),
    new TypeError(
      'Cannot compute GAE: "values" must have one row per "rewards" row (2): current length is 1',
    ),
  );
});

Deno.test("whiten() gives exact values on a tiny batch", () => {
  // [[0, 4], [8, 4]]: mean 4, unbiased var (16 + 0 + 16 + 0) / 3 = 32/3, rsqrt ≈ 0.3061862
  const s = 1 / Math.sqrt(32 / 3 + 1e-8);
  assertRaggedClose(whiten([[0, 4], [8, 4]]), [[-4 * s, 0], [4 * s, 0]], 1e-12);
  assertRaggedClose(whiten([[0, 4], [8, 4]]), [[-1.22474487081749, 0], [1.22474487081749, 0]]);
  // shiftMean false adds the mean back: only the spread changes.
  assertRaggedClose(
    whiten([[0, 4], [8, 4]], { shiftMean: false }),
    [[2.77525512918251, 4], [5.22474487081749, 4]],
  );
});

Deno.test("whiten() gives mean 0 and unbiased variance 1 over a ragged batch", () => {
  const rows = [[1, 5, 2], [7], [-3, 0.5, 4, 4]];
  const w = whiten(rows);
  assert.deepEqual(w.map((r) => r.length), [3, 1, 4]);
  const flat = w.flat();
  const mean = flat.reduce((a, b) => a + b, 0) / flat.length;
  const unbiasedVar = flat.reduce((a, b) => a + (b - mean) ** 2, 0) / (flat.length - 1);
  assertClose(mean, 0, 1e-12);
  assertClose(unbiasedVar, 1, 1e-8);
  // Not the biased variance: that would be (n - 1)/n = 7/8.
  assert.ok(Math.abs(unbiasedVar - 7 / 8) > 0.1);
  // shiftMean false keeps the mean 2.5625 and the same spread.
  const kept = whiten(rows, { shiftMean: false }).flat();
  assertClose(kept.reduce((a, b) => a + b, 0) / kept.length, 2.5625, 1e-12);
  assertAllClose(kept.map((x) => x - 2.5625), flat, 1e-12);
});

Deno.test("whiten() handles an empty batch and a single token", () => {
  assert.deepEqual(whiten([[], []]), [[], []]);
  assert.deepEqual(whiten([]), []);
  assert.deepEqual(whiten([[], [3]]), [[], [0]]);
  assert.deepEqual(whiten([[3]], { shiftMean: false }), [[3]]);
});

Deno.test("explainedVariance() is 1 - Var(R - V) / Var(R) over all tokens", () => {
  // R = [0, 2, 0.6], V = [1.5, 1.5, 0.5]; residuals [-1.5, 0.5, 0.1]:
  // Var(res) = 2.24/3, Var(R) = 2.106667/3 → 1 - 2.24/2.106667 = -0.0632911
  assertClose(
    explainedVariance([[1.5, 1.5], [0.5]], [[0, 2], [0.6]]),
    1 - 2.24 / (6.32 / 3),
    1e-12,
  );
  assert.equal(explainedVariance([[1, 2, 3]], [[1, 2, 3]]), 1);
  assert.equal(explainedVariance([[0, 0]], [[2, 4]]), 1 - 1); // V = 0 explains nothing
  assert.ok(Number.isNaN(explainedVariance([[0, 1]], [[2, 2]])));
  assert.throws(
    () => explainedVariance([[1, 2]], [[1]]),
    new TypeError(
      'Cannot compute the explained variance: "returns" must have the length of "values" (2): current length is 1',
    ),
  );
});

Deno.test("ppoAdvantages() chains rewards, GAE and whitening over the kept sequences", () => {
  const inputs = {
    scores: [1, null, 0],
    kls: [[0.2, 0], [0.1], [0, 0.4]],
    values: [[0.5, 0.5], [0.3], [0, 0]],
  };
  // β = 0.5, γ = λ = 1:
  // row 0: r = [-0.1, 1]; Â_1 = 1 - 0.5 = 0.5; Â_0 = (-0.1 + 0.5 - 0.5) + 0.5 = 0.4; R = [0.9, 1]
  // row 1: skipped, zeros
  // row 2: r = [0, -0.2]; Â_1 = -0.2; Â_0 = 0 + 0 - 0 - 0.2 = -0.2; R = [-0.2, -0.2]
  const raw = ppoAdvantages(inputs, { klCoef: 0.5, gamma: 1, lam: 1, whitenAdvantages: false });
  assertRaggedClose(raw.rewards, [[-0.1, 1], [0], [0, -0.2]], 1e-12);
  assertRaggedClose(raw.advantages, [[0.4, 0.5], [0], [-0.2, -0.2]], 1e-12);
  assertRaggedClose(raw.returns, [[0.9, 1], [0], [-0.2, -0.2]], 1e-12);
  assert.deepEqual(raw.keep, [true, false, true]);
  // Whitened over the 4 kept tokens [0.4, 0.5, -0.2, -0.2]: mean 0.125, unbiased var 0.4275/3.
  const s = 1 / Math.sqrt(0.4275 / 3 + 1e-8);
  const w = ppoAdvantages(inputs, { klCoef: 0.5, gamma: 1, lam: 1, whitenAdvantages: true });
  assertRaggedClose(w.advantages, [[0.275 * s, 0.375 * s], [0], [-0.325 * s, -0.325 * s]], 1e-9);
  assertRaggedClose(w.returns, raw.returns, 0); // returns stay raw
});

// --- loss ---

/**
 * Two rows, ε = 0.2, ratios r and advantages Â:
 * row 0: r = [1.5, 1.1, 0.5], Â = [1, 1, -1], mask [1, 1, 1]
 *   t0: -1.5 vs -1.2 → -1.2 (clipped)   t1: -1.1 vs -1.1 → -1.1   t2: 0.5 vs 0.8 → 0.8 (clipped)
 * row 1: r = [0.7, 1.0, 3.0], Â = [2, 0.5, 7], mask [1, 1, 0]
 *   t0: -1.4 vs -1.6 → -1.4 (r < 1 - ε but Â > 0: not clipped)   t1: -0.5   t2: padding
 */
function policyCase(): PpoPolicyLossInputs {
  const oldLogp = tf.tensor2d([[-1, -2, -0.5], [-1, -3, -2]]);
  const logRatio = tf.tensor2d([
    [Math.log(1.5), Math.log(1.1), Math.log(0.5)],
    [Math.log(0.7), 0, Math.log(3)],
  ]);
  return {
    logp: tf.add(oldLogp, logRatio) as tf.Tensor2D,
    oldLogp,
    advantages: tf.tensor2d([[1, 1, -1], [2, 0.5, 7]]),
    mask: tf.tensor2d([[1, 1, 1], [1, 1, 0]]),
  };
}

Deno.test("ppoPolicyLoss() gives hand-computed losses for every loss type", () => {
  const inputs = policyCase();
  const opts = (lossType: PpoPolicyLossOptions["lossType"]): PpoPolicyLossOptions => ({
    cliprange: 0.2,
    lossType,
  });
  // token_mean: (-1.2 - 1.1 + 0.8 - 1.4 - 0.5) / 5 = -3.4 / 5
  assertClose(value(ppoPolicyLoss(inputs, opts("token_mean")).loss), -0.68, 1e-5);
  // seq_mean_token_mean: mean(-1.5 / 3, -1.9 / 2) = mean(-0.5, -0.95)
  assertClose(value(ppoPolicyLoss(inputs, opts("seq_mean_token_mean")).loss), -0.725, 1e-5);
  // seq_mean_token_sum: mean(-1.5, -1.9)
  assertClose(value(ppoPolicyLoss(inputs, opts("seq_mean_token_sum")).loss), -1.7, 1e-5);
  // token_mean over a larger accumulated batch: -3.4 / 10
  assertClose(
    value(ppoPolicyLoss(inputs, { ...opts("token_mean"), numItemsInBatch: 10 }).loss),
    -0.34,
    1e-5,
  );
});

Deno.test("ppoPolicyLoss() reports clip fraction, approx KL and ratio mean", () => {
  const { stats } = ppoPolicyLoss(policyCase(), { cliprange: 0.2, lossType: "token_mean" });
  assertClose(value(stats.clipFrac), 2 / 5, 1e-6);
  // 0.5 · mean(log² [1.5, 1.1, 0.5, 0.7, 1.0]) over the 5 real tokens
  assertClose(value(stats.approxKl), 0.07811560138193975, 1e-5);
  assertClose(value(stats.ratioMean), (1.5 + 1.1 + 0.5 + 0.7 + 1.0) / 5, 1e-5);
  assert.equal(value(stats.kl), 0);
});

Deno.test("ppoPolicyLoss() gradient raises logp for Â > 0 and lowers it for Â < 0", () => {
  const oldLogp = tf.tensor2d([[-1, -1, -1]]);
  const advantages = tf.tensor2d([[1, -1, 1]]);
  const mask = tf.tensor2d([[1, 1, 1]]);
  const lossOf = (logp: tf.Tensor2D): tf.Scalar =>
    ppoPolicyLoss({ logp, oldLogp, advantages, mask }, { cliprange: 0.2, lossType: "token_mean" })
      .loss;
  // Token 2 already has ratio e^0.5 > 1.2 with Â > 0: clipped, no gradient.
  const logp = tf.tensor2d([[-1, -1, -0.5]]);
  const grad = tf.grad((x) => lossOf(x as tf.Tensor2D))(logp).dataSync();
  // d/dlogp of -Â·ratio / 3 at ratio 1: -Â / 3
  assertAllClose(grad, [-1 / 3, 1 / 3, 0], 1e-6);
  // One step of gradient descent moves logp the way the advantage says and lowers the loss.
  const stepped = tf.sub(logp, tf.mul(0.1, tf.tensor2d([Array.from(grad)]))) as tf.Tensor2D;
  const after = stepped.dataSync();
  assert.ok(after[0]! > -1, "Â > 0 raises logp");
  assert.ok(after[1]! < -1, "Â < 0 lowers logp");
  assert.ok(value(lossOf(stepped)) < value(lossOf(logp)));
  // The same tensor as logp and oldLogp (TRL's detach when μ = 1): the gradient is that of
  // logp alone (without the detach, exp(x - x) would have gradient 0).
  const same = tf.grad((x) =>
    ppoPolicyLoss(
      { logp: x as tf.Tensor2D, oldLogp: x as tf.Tensor2D, advantages, mask },
      { cliprange: 0.2, lossType: "token_mean" },
    ).loss
  )(oldLogp);
  assertAllClose(same.dataSync(), [-1 / 3, 1 / 3, -1 / 3], 1e-6);
  // No gradient reaches oldLogp, advantages or mask.
  const g = tf.grads((a, b, c, d) =>
    ppoPolicyLoss(
      {
        logp: a as tf.Tensor2D,
        oldLogp: b as tf.Tensor2D,
        advantages: c as tf.Tensor2D,
        mask: d as tf.Tensor2D,
      },
      { cliprange: 0.2, lossType: "token_mean" },
    ).loss
  )([logp, oldLogp, advantages, mask]);
  assertAllClose(g[0]!.dataSync(), Array.from(grad), 1e-7);
  for (const zero of g.slice(1)) assertAllClose(zero.dataSync(), [0, 0, 0], 0);
});

Deno.test("ppoPolicyLoss() adds β·KL to the loss when klCoef is set", () => {
  const logp = tf.tensor2d([[-1]]);
  const base = { logp, oldLogp: logp, advantages: tf.tensor2d([[0.5]]), mask: tf.tensor2d([[1]]) };
  const refLogp = tf.tensor2d([[-1.5]]);
  // k3 = exp(-0.5) + 0.5 - 1 = 0.1065307; loss = -0.5 + 0.1 · k3
  const k3 = ppoPolicyLoss({ ...base, refLogp }, {
    cliprange: 0.2,
    lossType: "token_mean",
    klCoef: 0.1,
  });
  assertClose(value(k3.loss), -0.5 + 0.1 * 0.10653065971263342, 1e-6);
  assertClose(value(k3.stats.kl), 0.10653065971263342, 1e-6);
  // k1 = logp - ref = 0.5; loss = -0.5 + 0.1 · 0.5
  const k1 = ppoPolicyLoss({ ...base, refLogp }, {
    cliprange: 0.2,
    lossType: "token_mean",
    klCoef: 0.1,
    klEstimator: "k1",
  });
  assertClose(value(k1.loss), -0.45, 1e-6);
});

Deno.test("ppoPolicyLoss() rejects bad shapes and options", () => {
  const inputs = policyCase();
  const opts: PpoPolicyLossOptions = { cliprange: 0.2, lossType: "token_mean" };
  assert.throws(
    () => ppoPolicyLoss({ ...inputs, advantages: tf.tensor2d([[1, 2]]) }, opts),
    new TypeError(
      'Cannot compute PPO policy loss: "advantages" must have the shape of "logp" [2, 3]: current shape is [1, 2]',
    ),
  );
  assert.throws(
    () => ppoPolicyLoss(inputs, { ...opts, klCoef: 0.1 }),
    new TypeError(
      'Cannot compute PPO policy loss: "refLogp" is required when klCoef != 0: current value is undefined',
    ),
  );
  assert.throws(
    () => ppoPolicyLoss(inputs, { ...opts, cliprange: 1 }),
    new RangeError(
      'Cannot compute PPO policy loss: "cliprange" must be in (0, 1): current value is 1',
    ),
  );
  assert.throws(
    () => ppoPolicyLoss(inputs, { ...opts, lossType: "dapo" as "token_mean" }),
    new RangeError('Unknown loss type: "dapo"'),
  );
});

/**
 * ε_v = 0.2, one row of 4 tokens, the last one padding:
 * t0: V = 1.5, V_old = 1.0, R = 0.0: clip → 1.2; (1.5)² = 2.25 vs (1.2)² = 1.44 → 2.25 (unclipped)
 * t1: V = 1.5, V_old = 1.0, R = 2.0: clip → 1.2; (0.5)² = 0.25 vs (0.8)² = 0.64 → 0.64 (clipped)
 * t2: V = 0.5, V_old = 0.4, R = 0.6: inside the range; 0.01 vs 0.01 → 0.01
 * t3: padding (V = 9 would give 81)
 * loss = 0.5 · (2.25 + 0.64 + 0.01) / 3 = 0.4833333; vfClipFrac = 1/3
 */
function valueCase(): ValueLossInputs {
  return {
    values: tf.tensor2d([[1.5, 1.5, 0.5, 9]]),
    oldValues: tf.tensor2d([[1.0, 1.0, 0.4, 0]]),
    returns: tf.tensor2d([[0.0, 2.0, 0.6, 0]]),
    mask: tf.tensor2d([[1, 1, 1, 0]]),
  };
}

Deno.test("valueLoss() takes the clipped term when it is larger and not otherwise", () => {
  const { loss, stats } = valueLoss(valueCase(), { cliprangeValue: 0.2 });
  assertClose(value(loss), 0.5 * 2.9 / 3, 1e-6);
  assertClose(value(stats.vfClipFrac), 1 / 3, 1e-6);
  // Only the clipped term matters: 0.5 · (1.2 - 2)² = 0.32, clip fraction 1.
  const clipped = valueLoss({
    values: tf.tensor2d([[1.5]]),
    oldValues: tf.tensor2d([[1.0]]),
    returns: tf.tensor2d([[2.0]]),
    mask: tf.tensor2d([[1]]),
  }, { cliprangeValue: 0.2 });
  assertClose(value(clipped.loss), 0.32, 1e-6);
  assertClose(value(clipped.stats.vfClipFrac), 1, 0);
  // Only the unclipped term matters: 0.5 · 1.5² = 1.125, clip fraction 0.
  const unclipped = valueLoss({
    values: tf.tensor2d([[1.5]]),
    oldValues: tf.tensor2d([[1.0]]),
    returns: tf.tensor2d([[0.0]]),
    mask: tf.tensor2d([[1]]),
  }, { cliprangeValue: 0.2 });
  assertClose(value(unclipped.loss), 1.125, 1e-6);
  assertClose(value(unclipped.stats.vfClipFrac), 0, 0);
});

Deno.test("valueLoss() sends gradient only through the unclipped tokens", () => {
  const inputs = valueCase();
  const grad = tf.grad((v) =>
    valueLoss({ ...inputs, values: v as tf.Tensor2D }, { cliprangeValue: 0.2 }).loss
  )(inputs.values).dataSync();
  // d/dV of 0.5 · (V - R)² / 3 = (V - R) / 3 where unclipped; 0 where clipped or padded.
  assertAllClose(grad, [1.5 / 3, 0, -0.1 / 3, 0], 1e-6);
});

Deno.test("valueLoss() reports the explained variance of its predictions", () => {
  const { stats } = valueLoss(valueCase(), { cliprangeValue: 0.2 });
  const expected = explainedVariance([[1.5, 1.5, 0.5]], [[0.0, 2.0, 0.6]]);
  assertClose(expected, -0.0632911392405064, 1e-12);
  assertClose(value(stats.explainedVariance), expected, 1e-5);
  const flat = valueLoss({
    values: tf.tensor2d([[1, 2]]),
    oldValues: tf.tensor2d([[1, 2]]),
    returns: tf.tensor2d([[3, 3]]),
    mask: tf.tensor2d([[1, 1]]),
  }, { cliprangeValue: 0.2 });
  assert.ok(Number.isNaN(value(flat.stats.explainedVariance)));
});

Deno.test("valueLoss() rejects bad shapes and options", () => {
  const inputs = valueCase();
  assert.throws(
    () => valueLoss({ ...inputs, returns: tf.tensor2d([[1, 2, 3]]) }, { cliprangeValue: 0.2 }),
    new TypeError(
      'Cannot compute PPO value loss: "returns" must have the shape of "values" [1, 4]: current shape is [1, 3]',
    ),
  );
  assert.throws(
    () => valueLoss(inputs, { cliprangeValue: 0 }),
    new RangeError(
      'Cannot compute PPO value loss: "cliprangeValue" must be > 0: current value is 0',
    ),
  );
});
