import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  groupAdvantages,
  grpoAlgorithm,
  GrpoConfigSchema,
  grpoLoss,
  type GrpoLossInputs,
  type GrpoLossOptions,
  keptGroupAdvantages,
  zeroVarianceGroups,
} from "../../../algorithms/grpo/mod.ts";
import type { Scored } from "../../../actors/messages.ts";
import golden from "../../fixtures/trl_grpo_golden.json" with { type: "json" };

tf.enableProdMode();
await tf.setBackend("cpu");

function assertClose(actual: number, expected: number, tol = 1e-5, label = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${label} expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

function assertAllClose(actual: ArrayLike<number>, expected: number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) assertClose(actual[i]!, expected[i]!, tol, `[${i}]`);
}

function value(t: tf.Tensor): number {
  return t.dataSync()[0]!;
}

// --- config ---

Deno.test("GrpoConfigSchema fills TRL's defaults", () => {
  const config = GrpoConfigSchema.parse({});
  assert.deepEqual(config, {
    num_generations: 8,
    loss_type: "dapo",
    scale_rewards: "group",
    epsilon: 0.2,
    beta: 0,
    num_iterations: 1,
    mask_truncated_completions: false,
    filter_groups: false,
  });
  assert.equal(config.epsilon_high, undefined);
  assert.equal(GrpoConfigSchema.parse({ epsilon_high: 0.28 }).epsilon_high, 0.28);
});

Deno.test("GrpoConfigSchema rejects out-of-range values and unknown fields", () => {
  assert.throws(() => GrpoConfigSchema.parse({ num_generations: 1 }));
  assert.throws(() => GrpoConfigSchema.parse({ num_generations: 2.5 }));
  assert.throws(() => GrpoConfigSchema.parse({ loss_type: "ppo" }));
  assert.throws(() => GrpoConfigSchema.parse({ scale_rewards: true }));
  assert.throws(() => GrpoConfigSchema.parse({ epsilon: 0 }));
  assert.throws(() => GrpoConfigSchema.parse({ beta: -0.1 }));
  assert.throws(() => GrpoConfigSchema.parse({ num_iterations: 0 }));
  assert.throws(() => GrpoConfigSchema.parse({ epsilon_hgih: 0.28 }));
});

// --- advantages ---

// rewards [1,0,0,1, 1,1,1,0], G = 4
// group 1: mean 0.5, deviations ±0.5, Σd² = 1, unbiased var = 1/3, std = 0.577350
//          A = ±0.5 / (0.577350 + 1e-4) = ±0.865875
// group 2: mean 0.75, deviations 0.25 ×3 and -0.75, Σd² = 3·0.0625 + 0.5625 = 0.75,
//          var = 0.75/3 = 0.25, std = 0.5: A = 0.25/0.5001 = 0.499900, -0.75/0.5001 = -1.499700
// batch:   mean 5/8, Σd² = 5·0.375² + 3·0.625² = 0.703125 + 1.171875 = 1.875,
//          var = 1.875/7, std = 0.517549; the numerator still uses the GROUP mean:
//          ±0.5/0.517649 = ±0.965905, 0.25/0.517649 = 0.482953, -0.75/0.517649 = -1.448858
const REWARDS = [1, 0, 0, 1, 1, 1, 1, 0];

Deno.test("groupAdvantages() divides by the unbiased group std plus 1e-4", () => {
  const a = 0.865875;
  assertAllClose(groupAdvantages(REWARDS, 4, "group"), [
    a,
    -a,
    -a,
    a,
    0.4999,
    0.4999,
    0.4999,
    -1.4997,
  ]);
});

Deno.test("groupAdvantages() subtracts the group mean and divides by the batch std", () => {
  const a = 0.965905;
  assertAllClose(groupAdvantages(REWARDS, 4, "batch"), [
    a,
    -a,
    -a,
    a,
    0.482953,
    0.482953,
    0.482953,
    -1.448858,
  ]);
});

Deno.test("groupAdvantages() only centres with scale_rewards none", () => {
  assertAllClose(
    groupAdvantages(REWARDS, 4, "none"),
    [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75],
  );
});

Deno.test("groupAdvantages() gives 0 to a zero-variance group", () => {
  for (const scale of ["group", "batch", "none"] as const) {
    const adv = groupAdvantages([2, 2, 2, 2, 1, 0, 1, 0], 4, scale);
    assert.deepEqual(Array.from(adv.subarray(0, 4)), [0, 0, 0, 0], scale);
  }
});

Deno.test("groupAdvantages() leaves NaN rewards out and gives them advantage 0", () => {
  // valid rewards 1, 0, 1: mean 2/3, var = (1/9 + 4/9 + 1/9)/2 = 1/3, std 0.577350
  // (1/3)/0.577450 = 0.577250, (-2/3)/0.577450 = -1.154501
  assertAllClose(groupAdvantages([1, NaN, 0, 1], 4, "group"), [0.57725, 0, -1.154501, 0.57725]);
});

Deno.test("groupAdvantages() rejects a group size that does not divide the batch", () => {
  assert.throws(
    () => groupAdvantages([1, 0, 1], 2, "group"),
    new RangeError(
      "Cannot compute group advantages: the number of rewards must be a multiple of the group size 2: current value is 3",
    ),
  );
  assert.throws(() => groupAdvantages([1, 0], 0, "group"), RangeError);
});

Deno.test("keptGroupAdvantages() equals groupAdvantages() of the kept groups alone", () => {
  // Groups of 2: [1, 0] kept, [0, 0] dropped, [1, 0.5] kept.
  const rewards = [1, 0, 0, 0, 1, 0.5];
  const keep = [true, true, false, false, true, true];
  for (const scale of ["group", "batch", "none"] as const) {
    const a = keptGroupAdvantages(rewards, 2, { scaleRewards: scale, keep });
    const alone = groupAdvantages([1, 0, 1, 0.5], 2, scale);
    assert.deepEqual([...a], [alone[0], alone[1], 0, 0, alone[2], alone[3]], scale);
  }
  // Without keep it is groupAdvantages() itself.
  assert.deepEqual(
    keptGroupAdvantages(rewards, 2, { scaleRewards: "batch" }),
    groupAdvantages(rewards, 2, "batch"),
  );
  // A dropped completion inside a kept group is out of its group's mean, like a NaN reward.
  assert.deepEqual(
    keptGroupAdvantages([1, 0, 0.5], 3, { scaleRewards: "none", keep: [true, false, true] }),
    Float32Array.from([0.25, 0, -0.25]),
  );
});

Deno.test("keptGroupAdvantages() rejects a keep mask of the wrong length", () => {
  assert.throws(
    () => keptGroupAdvantages([1, 0], 2, { scaleRewards: "group", keep: [true] }),
    new TypeError(
      "Cannot compute kept-group advantages: keep must hold one flag per reward (2): current length is 1",
    ),
  );
});

/** A scored batch with these rewards, `n` rollouts per query, for the algorithm alone. */
function scoredWith(rewards: (number | null)[], n: number): Scored {
  return {
    type: "Scored",
    purpose: "train",
    step: 1,
    label: "layer2",
    queries: Array.from({ length: rewards.length / n }, (_, q) => ({
      id: `q${q}`,
      question: "?",
      answer: 5,
      prompt: "p",
      promptIds: [1],
    })),
    n,
    policyVersion: 0,
    timings: {},
    rollouts: rewards.map((_, i) => ({
      queryIndex: Math.floor(i / n),
      completionIds: [2],
      logprobs: [-1],
      text: "5",
      finishReason: "stop",
    })),
    verdicts: rewards.map((reward) => ({
      reward,
      correct: reward === 1,
      parsed: "5",
      reason: "",
    })),
  };
}

Deno.test("grpoAlgorithm().advantages() leaves rows outside options.keep out of the batch std", () => {
  const algorithm = grpoAlgorithm(GrpoConfigSchema.parse({ scale_rewards: "batch" }), 8);
  // Groups of 2: [1, 0] kept, [0, 0] dropped by the sender, [1, 1] kept.
  const scored = scoredWith([1, 0, 0, 0, 1, 1], 2);
  const keep = [true, true, false, false, true, true];
  const adv = algorithm.advantages(scored, { keep });
  // Kept rewards [1, 0, 1, 1]: mean 0.75, Σ(r − mean)² = 3·0.0625 + 0.5625 = 0.75,
  // unbiased std sqrt(0.75 / 3) = 0.5 → group 0: ±0.5 / (0.5 + 1e-4) = ±0.99980.
  assertAllClose(adv.advantages, [0.99980, -0.99980, 0, 0, 0, 0], 1e-5);
  assert.deepEqual(adv.keep, keep);
  // Without the mask all six rewards set the std: mean 0.5, Σ = 6·0.25 = 1.5,
  // std sqrt(1.5 / 5) = 0.547723 → ±0.5 / 0.547823 = ±0.91270.
  const all = algorithm.advantages(scored);
  assertAllClose(all.advantages, [0.91270, -0.91270, 0, 0, 0, 0], 1e-5);
  assert.deepEqual(all.keep, [true, true, true, true, true, true]);
  // filter_groups still drops a zero-variance group among the kept ones, a skipped sample
  // still drops its row.
  const filtered = grpoAlgorithm(GrpoConfigSchema.parse({ filter_groups: true }), 8)
    .advantages(scored, { keep });
  assert.deepEqual(filtered.keep, [true, true, false, false, false, false]);
  const skipped = algorithm.advantages(scoredWith([1, 0, 0, 0, null, 1], 2), { keep });
  assert.deepEqual(skipped.keep, [true, true, false, false, false, true]);
});

Deno.test("zeroVarianceGroups() flags groups whose rewards are all equal", () => {
  assert.deepEqual(zeroVarianceGroups([1, 1, 0, 0, 0, 0, 0.5, NaN, 0.5], 3), [false, true, true]);
  assert.deepEqual(zeroVarianceGroups([NaN, NaN], 2), [true]);
});

// --- loss ---

const OPTS: GrpoLossOptions = {
  lossType: "bnpo",
  epsilon: 0.2,
  epsilonHigh: 0.2,
  beta: 0,
  maxCompletionLength: 3,
};

/** Builds inputs whose importance ratios are exactly `ratios` (old log-prob -1). */
function inputsFromRatios(
  ratios: number[][],
  advantages: number[],
  mask: number[][],
): GrpoLossInputs {
  return {
    logp: tf.tensor2d(ratios.map((row) => row.map((r) => -1 + Math.log(r)))),
    oldLogp: tf.fill([ratios.length, ratios[0]!.length], -1) as tf.Tensor2D,
    advantages: tf.tensor1d(advantages),
    mask: tf.tensor2d(mask),
  };
}

// Ratios [0.5, 1.1, 1.25] for A = +1 and A = -1, ε = 0.2, all tokens active (6).
// ε_high = 0.2, clip range [0.8, 1.2]; ℓ = -min(r·A, clip(r)·A):
//   A = +1: r 0.5 → -min(0.5, 0.8) = -0.5; 1.1 → -1.1; 1.25 → -min(1.25, 1.2) = -1.2 (high clip)
//   A = -1: r 0.5 → -min(-0.5, -0.8) = 0.8 (low clip); 1.1 → 1.1; 1.25 → -min(-1.25, -1.2) = 1.25
//   Σℓ = -2.8 + 3.15 = 0.35, bnpo loss = 0.35/6 = 0.058333
// ε_high = 0.28, range [0.8, 1.28]: A = +1, r 1.25 is no longer clipped: ℓ = -1.25,
//   Σℓ = -2.85 + 3.15 = 0.3, loss = 0.05
const CLIP_RATIOS = [[0.5, 1.1, 1.25], [0.5, 1.1, 1.25]];
const CLIP_ADV = [1, -1];
const FULL_MASK = [[1, 1, 1], [1, 1, 1]];

Deno.test("grpoLoss() clips the ratio to [1 - ε, 1 + ε] and reports clip fractions", () => {
  const inputs = inputsFromRatios(CLIP_RATIOS, CLIP_ADV, FULL_MASK);
  const { loss, stats } = grpoLoss(inputs, OPTS);
  assertClose(value(loss), 0.35 / 6);
  assertClose(value(stats.clipLowMean), 1 / 6); // A < 0, r = 0.5 < 0.8
  assertClose(value(stats.clipHighMean), 1 / 6); // A > 0, r = 1.25 > 1.2
  assertClose(value(stats.clipRegionMean), 2 / 6);
  assertClose(value(stats.ratioMean), (2 * (0.5 + 1.1 + 1.25)) / 6); // 0.95
  assert.equal(value(stats.kl), 0);
});

Deno.test("grpoLoss() with clip-higher keeps a ratio of 1.25 unclipped at ε_high 0.28", () => {
  const inputs = inputsFromRatios(CLIP_RATIOS, CLIP_ADV, FULL_MASK);
  const { loss, stats } = grpoLoss(inputs, { ...OPTS, epsilonHigh: 0.28 });
  assertClose(value(loss), 0.3 / 6);
  assertClose(value(stats.clipLowMean), 1 / 6);
  assert.equal(value(stats.clipHighMean), 0);
  assertClose(value(stats.clipRegionMean), 1 / 6);
});

Deno.test("grpoLoss() gradient is -r·A/6 for unclipped tokens and 0 for clipped ones", () => {
  const inputs = inputsFromRatios(CLIP_RATIOS, CLIP_ADV, FULL_MASK);
  const grad = tf.grad((logp: tf.Tensor) =>
    grpoLoss({ ...inputs, logp: logp as tf.Tensor2D }, OPTS).loss
  )(inputs.logp);
  // ∂(-r·A)/∂logp = -r·A, divided by 6 tokens; clipped tokens (A=+1, r=1.25; A=-1, r=0.5): 0
  assertAllClose(grad.dataSync(), [-0.5 / 6, -1.1 / 6, 0, 0, 1.1 / 6, 1.25 / 6]);
});

Deno.test("grpoLoss() does not differentiate through oldLogp even when it is logp itself", () => {
  // TRL's μ = 1 case: old = logp.detach(), ratio = 1, ∂ℓ/∂logp = -A; bnpo over 2 tokens:
  // A = 0.5 → gradient -0.25 per token (it would be 0 if oldLogp carried gradient).
  const grad = tf.grad((logp: tf.Tensor) =>
    grpoLoss({
      logp: logp as tf.Tensor2D,
      oldLogp: logp as tf.Tensor2D,
      advantages: tf.tensor1d([0.5]),
      mask: tf.tensor2d([[1, 1]]),
    }, OPTS).loss
  )(tf.tensor2d([[-1, -2]]));
  assertAllClose(grad.dataSync(), [-0.25, -0.25]);
});

// 2×3, A = [1, -2], mask [[1,1,0],[1,0,0]]; ratios inside the clip range on active tokens,
// the masked ones are far outside (3.0, 5.0) to show they do not count.
//   row 0: ℓ = -r·A = [-1.0, -1.1, ·], Σ = -2.1 over 2 tokens
//   row 1: r = 0.9, A = -2: ℓ = -min(-1.8, -1.8) = 1.8, Σ = 1.8 over 1 token
//   grpo    = mean(-2.1/2, 1.8/1) = (-1.05 + 1.8)/2 = 0.375
//   bnpo    = (-2.1 + 1.8)/3 = -0.1
//   dr_grpo = -0.3/(N·T_max) = -0.3/(2·4) = -0.0375
//   dapo    = -0.3/3 = -0.1 (local tokens), -0.3/10 = -0.03 with numItemsInBatch 10
const UNEVEN = (): GrpoLossInputs =>
  inputsFromRatios([[1.0, 1.1, 3.0], [0.9, 5.0, 1.0]], [1, -2], [[1, 1, 0], [1, 0, 0]]);

Deno.test("grpoLoss() reduces each loss_type over an uneven mask", () => {
  const cases: [GrpoLossOptions, number][] = [
    [{ ...OPTS, lossType: "grpo" }, 0.375],
    [{ ...OPTS, lossType: "bnpo" }, -0.1],
    [{ ...OPTS, lossType: "dr_grpo", maxCompletionLength: 4 }, -0.0375],
    [{ ...OPTS, lossType: "dapo" }, -0.1],
    [{ ...OPTS, lossType: "dapo", numItemsInBatch: 10 }, -0.03],
  ];
  for (const [options, expected] of cases) {
    const { loss, stats } = grpoLoss(UNEVEN(), options);
    assertClose(value(loss), expected, 1e-5, options.lossType);
    // masked tokens r = 3.0 (A > 0) and r = 5.0 (A < 0) would be clipped high / not at all:
    // no active token is clipped
    assert.equal(value(stats.clipRegionMean), 0);
    assertClose(value(stats.ratioMean), (1.0 + 1.1 + 0.9) / 3);
  }
});

Deno.test("grpoLoss() grpo counts a fully masked sequence as 0 with denominator 1", () => {
  // rows: -2.1/2, 1.8/1, 0/max(1, 0) → mean over 3 sequences = 0.75/3 = 0.25
  const inputs = inputsFromRatios(
    [[1.0, 1.1, 3.0], [0.9, 5.0, 1.0], [2.0, 2.0, 2.0]],
    [1, -2, 1],
    [[1, 1, 0], [1, 0, 0], [0, 0, 0]],
  );
  assertClose(value(grpoLoss(inputs, { ...OPTS, lossType: "grpo" }).loss), 0.25);
});

Deno.test("grpoLoss() adds β times the k3 KL estimator", () => {
  // ratio 1 (logp = old), ref - logp = [0.5, -0.5, 0]:
  //   k3 = e^0.5 - 0.5 - 1 = 0.148721, e^-0.5 + 0.5 - 1 = 0.106531, e^0 - 0 - 1 = 0
  //   kl (masked mean) = 0.255252/3 = 0.085084
  // A = 1: ℓ = -1 + β·k3, bnpo loss = -1 + 0.1·0.085084 = -0.991492
  const logp = tf.tensor2d([[-1, -2, -3]]);
  const inputs: GrpoLossInputs = {
    logp,
    oldLogp: logp,
    refLogp: tf.tensor2d([[-0.5, -2.5, -3]]),
    advantages: tf.tensor1d([1]),
    mask: tf.tensor2d([[1, 1, 1]]),
  };
  const { loss, stats } = grpoLoss(inputs, { ...OPTS, beta: 0.1 });
  assertClose(value(stats.kl), 0.085084);
  assertClose(value(loss), -1 + 0.1 * 0.085084);
  // β = 0: refLogp is ignored and kl is reported as 0
  const plain = grpoLoss(inputs, OPTS);
  assertClose(value(plain.loss), -1);
  assert.equal(value(plain.stats.kl), 0);
  // ∂ℓ/∂logp = -r·A + β·(1 - e^(ref - logp)), /3 tokens:
  //   (-1 + 0.1·(1 - 1.648721))/3 = -0.354957, (-1 + 0.1·(1 - 0.606531))/3 = -0.320218, -1/3
  const grad = tf.grad((x: tf.Tensor) =>
    grpoLoss({ ...inputs, logp: x as tf.Tensor2D, oldLogp: x as tf.Tensor2D }, {
      ...OPTS,
      beta: 0.1,
    }).loss
  )(logp);
  assertAllClose(grad.dataSync(), [-0.354957, -0.320218, -1 / 3]);
});

Deno.test("grpoLoss() returns only its outputs and leaks no tensor", () => {
  const inputs = inputsFromRatios(CLIP_RATIOS, CLIP_ADV, FULL_MASK);
  const before = tf.memory().numTensors;
  const { loss, stats } = grpoLoss(inputs, { ...OPTS, lossType: "grpo" });
  assert.equal(tf.memory().numTensors, before + 6);
  tf.dispose([loss, ...Object.values(stats)]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("grpoLoss() rejects mismatched shapes, a missing refLogp and bad options", () => {
  const inputs = inputsFromRatios(CLIP_RATIOS, CLIP_ADV, FULL_MASK);
  assert.throws(
    () => grpoLoss({ ...inputs, mask: tf.ones([2, 2]) as tf.Tensor2D }, OPTS),
    new TypeError(
      'Cannot compute GRPO loss: "mask" must have the shape of "logp" [2, 3]: current shape is [2, 2]',
    ),
  );
  assert.throws(
    () => grpoLoss({ ...inputs, advantages: tf.tensor1d([1]) }, OPTS),
    new TypeError(
      'Cannot compute GRPO loss: "advantages" must have shape [2]: current shape is [1]',
    ),
  );
  assert.throws(
    () => grpoLoss(inputs, { ...OPTS, beta: 0.04 }),
    new TypeError(
      'Cannot compute GRPO loss: "refLogp" is required when beta != 0: current beta is 0.04',
    ),
  );
  assert.throws(() => grpoLoss(inputs, { ...OPTS, epsilon: 0 }), RangeError);
  assert.throws(() => grpoLoss(inputs, { ...OPTS, maxCompletionLength: 0 }), RangeError);
  assert.throws(
    () => grpoLoss(inputs, { ...OPTS, lossType: "ppo" as GrpoLossOptions["lossType"] }),
    new RangeError('Unknown loss type: "ppo"'),
  );
});

// Golden values from the real TRL 1.16.0 GRPOTrainer._compute_loss (tools/trl_grpo_golden.py):
// 3×4 log-probs with ratios below, inside and above the clip range, advantages [1, -0.8, 0],
// an uneven mask, each loss_type × ε_high ∈ {0.2, 0.28} × β ∈ {0, 0.04}, and dapo with
// num_items_in_batch 20.
Deno.test("grpoLoss() matches TRL's _compute_loss: loss, gradient and logged metrics", () => {
  assert.equal(golden.cases.length, 17);
  for (const c of golden.cases) {
    const label =
      `${c.loss_type} ε_high=${c.epsilon_high} β=${c.beta} items=${c.num_items_in_batch}`;
    const options: GrpoLossOptions = {
      lossType: c.loss_type as GrpoLossOptions["lossType"],
      epsilon: golden.epsilon,
      epsilonHigh: c.epsilon_high,
      beta: c.beta,
      maxCompletionLength: golden.max_completion_length,
      ...(c.num_items_in_batch === null ? {} : { numItemsInBatch: c.num_items_in_batch }),
    };
    const inputs: GrpoLossInputs = {
      logp: tf.tensor2d(golden.logp),
      oldLogp: tf.tensor2d(golden.old_logp),
      refLogp: tf.tensor2d(golden.ref_logp),
      advantages: tf.tensor1d(golden.advantages),
      mask: tf.tensor2d(golden.mask),
    };
    const { loss, stats } = grpoLoss(inputs, options);
    assertClose(value(loss), c.loss, 1e-6, `${label} loss`);
    assertClose(value(stats.kl), c.kl, 1e-6, `${label} kl`);
    assertClose(value(stats.clipLowMean), c.clip_low_mean, 1e-6, `${label} low`);
    assertClose(value(stats.clipHighMean), c.clip_high_mean, 1e-6, `${label} high`);
    assertClose(value(stats.clipRegionMean), c.clip_region_mean, 1e-6, `${label} region`);
    const grad = tf.grad((logp: tf.Tensor) =>
      grpoLoss({ ...inputs, logp: logp as tf.Tensor2D }, options).loss
    )(inputs.logp);
    assertAllClose(grad.dataSync(), c.grad.flat(), 1e-6);
  }
});
