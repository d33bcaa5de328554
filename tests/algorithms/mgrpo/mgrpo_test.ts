import assert from "node:assert/strict";
import {
  buildLayer2Prompt,
  classifyCorrection,
  drawGuidePhrase,
  LAYER2_SYSTEM_PROMPT,
  layer2Advantages,
  layer2Answer,
  layer2Assistant,
  layer2SystemPrompt,
  MgrpoConfigSchema,
  mgrpoMetrics,
  selectLayer2Groups,
  twoTurnMetrics,
} from "../../../algorithms/mgrpo/mod.ts";
import { keptGroupAdvantages } from "../../../algorithms/grpo/mod.ts";
import { Rng } from "../../../util/rng.ts";
import { renderChat } from "../../../prompts/chat_template.ts";
import { GUIDE_PHRASES } from "../../../prompts/system_prompts.ts";
import { verifyIntegerAnswer } from "../../../verifiers/integer_answer.ts";

function assertClose(actual: number, expected: number, tol = 1e-12, label = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${label} expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

function assertAllClose(actual: ArrayLike<number>, expected: number[], tol: number): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) assertClose(actual[i]!, expected[i]!, tol, `[${i}]`);
}

// --- config ---

Deno.test("MgrpoConfigSchema fills the paper's defaults", () => {
  const config = MgrpoConfigSchema.parse({});
  assert.deepEqual(config, {
    num_corrections: 4,
    guide_phrases: [...GUIDE_PHRASES],
    layer2_system_prompt: "",
    guide_separator: "\n",
    guide_position: "after_answer",
    selection: "paper",
    layer1_weight: 1,
    layer2_weight: 1,
    update: "joint",
  });
  assert.equal(config.guide_phrases.length, 7);
  // The default array is a copy: mutating one parse result does not leak into the next.
  config.guide_phrases.push("extra");
  assert.equal(MgrpoConfigSchema.parse({}).guide_phrases.length, 7);
  assert.equal(layer2SystemPrompt("table1"), LAYER2_SYSTEM_PROMPT);
  assert.equal(layer2SystemPrompt(""), "");
  assert.equal(layer2SystemPrompt("Check it."), "Check it.");
});

Deno.test("MgrpoConfigSchema rejects out-of-range values and unknown fields", () => {
  assert.throws(() => MgrpoConfigSchema.parse({ num_correction: 4 }));
  assert.throws(() => MgrpoConfigSchema.parse({ num_corrections: 0 }));
  assert.throws(() => MgrpoConfigSchema.parse({ num_corrections: 1.5 }));
  assert.throws(() => MgrpoConfigSchema.parse({ guide_phrases: [] }));
  assert.throws(() => MgrpoConfigSchema.parse({ guide_phrases: ["ok", ""] }));
  assert.throws(() => MgrpoConfigSchema.parse({ selection: "best" }));
  assert.throws(() => MgrpoConfigSchema.parse({ layer2_weight: -1 }));
  assert.throws(() => MgrpoConfigSchema.parse({ update: "alternate" }));
  assert.equal(MgrpoConfigSchema.parse({ num_corrections: 1 }).num_corrections, 1);
  assert.equal(MgrpoConfigSchema.parse({ layer1_weight: 0 }).layer1_weight, 0);
});

// --- layer-2 prompt ---

const QUESTION = "What is 2+3?";
const O_I = "<think>2+3=6</think>6";
const PHRASE = "Wait, let me double-check that.";

Deno.test("buildLayer2Prompt() renders Eq. 5 with a system prompt", () => {
  const text = buildLayer2Prompt(QUESTION, O_I, PHRASE, { systemPrompt: "Check your answer." });
  assert.equal(
    text,
    "<|im_start|>system\nCheck your answer.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+3?<|im_end|>\n" +
      "<|im_start|>assistant\n<think>2+3=6</think>6\nWait, let me double-check that.",
  );
});

Deno.test("buildLayer2Prompt() leaves the system turn out for an empty system prompt", () => {
  const text = buildLayer2Prompt(QUESTION, O_I, PHRASE, { systemPrompt: "", separator: " " });
  assert.equal(
    text,
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n" +
      "<|im_start|>assistant\n<think>2+3=6</think>6 Wait, let me double-check that.",
  );
});

Deno.test("buildLayer2Prompt() uses LAYER2_SYSTEM_PROMPT and a custom template", () => {
  assert.equal(
    buildLayer2Prompt(QUESTION, O_I, PHRASE),
    buildLayer2Prompt(QUESTION, O_I, PHRASE, { systemPrompt: LAYER2_SYSTEM_PROMPT }),
  );
  assert.ok(
    buildLayer2Prompt(QUESTION, O_I, PHRASE).startsWith(
      "<|im_start|>system\nYou are a helpful AI assistant.",
    ),
  );
  const template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}[/]{% endfor %}";
  // o_i follows the template's generation prompt (none in this template), never a rendered
  // assistant message.
  assert.equal(
    buildLayer2Prompt("q", "<think>t</think>a", "p", { systemPrompt: "", template }),
    "[user]q[/]<think>t</think>a\np",
  );
});

Deno.test("buildLayer2Prompt() keeps thought_i under a template that strips reasoning", () => {
  // DeepSeek-R1-Distill's real template keeps only the text after </think> of an assistant
  // message: q'_i must not pass o_i through it.
  const template = JSON.parse(
    Deno.readTextFileSync(
      new URL("../../fixtures/chat_templates/deepseek-r1-distill-qwen.json", import.meta.url),
    ),
  ).chat_template as string;
  const o = "<think>48 / 2 = 24</think>24";
  const text = buildLayer2Prompt("Half of 48?", o, "Wait.", { systemPrompt: "", template });
  assert.ok(text.includes("48 / 2 = 24"), text);
  assert.equal(
    text,
    renderChat([{ role: "user", content: "Half of 48?" }], {
      template,
      addGenerationPrompt: true,
    }) +
      o + "\nWait.",
  );
});

Deno.test("buildLayer2Prompt() puts p_guide inside the open thought with position in_think", () => {
  const options = { systemPrompt: "", separator: " ", position: "in_think" as const };
  assert.equal(
    buildLayer2Prompt("2+3?", "<think>2+3=6</think>6", "Let me recheck.", options),
    "<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n<think>2+3=6 Let me recheck.",
  );
  // A response cut off before </think> is kept whole.
  assert.equal(layer2Assistant("<think>2+3=", "Hm.", options), "<think>2+3= Hm.");
  // After a correction, the next round drops only the last </think> and answer.
  assert.equal(
    layer2Assistant("<think>2+3=6 Hm. 2+3=5</think>5", "Hm.", options),
    "<think>2+3=6 Hm. 2+3=5 Hm.",
  );
  assert.throws(
    () => layer2Assistant("x", "p", { position: "middle" as unknown as "in_think" }),
    RangeError,
  );
});

Deno.test("layer2Answer() is the prompt's assistant text plus the continuation", () => {
  const prompt = buildLayer2Prompt(QUESTION, O_I, PHRASE, { systemPrompt: "" });
  assert.ok(prompt.endsWith(layer2Answer(O_I, "\n", PHRASE, "")));
  const full = layer2Answer(O_I, "\n", PHRASE, " 2+3=5, not 6.</think>5");
  assert.equal(
    full,
    "<think>2+3=6</think>6\nWait, let me double-check that. 2+3=5, not 6.</think>5",
  );
  // The verifier scores the continuation alone (the Sampler's text): the corrected 5.
  assert.equal(verifyIntegerAnswer(" 2+3=5, not 6.</think>5", 5).correct, true);
  // o_i's answer in the prompt is right, yet a continuation with no answer of its own is wrong.
  assert.equal(verifyIntegerAnswer("<think>2+3=5</think>5", 5).correct, true);
  assert.equal(verifyIntegerAnswer(" Yes.", 5).correct, false);
});

Deno.test("drawGuidePhrase() is deterministic for a seed and draws only from the pool", () => {
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 200 }, () => drawGuidePhrase(rng, GUIDE_PHRASES));
  };
  const a = draw(7);
  assert.deepEqual(a, draw(7));
  assert.notDeepEqual(a, draw(8));
  for (const phrase of a) assert.ok(GUIDE_PHRASES.includes(phrase), phrase);
  // 200 uniform draws over 7 phrases hit every phrase (fixed seed, so this is exact).
  assert.equal(new Set(a).size, 7);
  assert.equal(drawGuidePhrase(new Rng(1), ["only"]), "only");
  assert.throws(() => drawGuidePhrase(new Rng(1), []), RangeError);
});

// --- dynamic verification and selection ---

Deno.test("classifyCorrection() maps the four verdict pairs to the paper's cases", () => {
  assert.equal(classifyCorrection(false, true), "correction"); // i → c
  assert.equal(classifyCorrection(true, true), "confirmation"); // c → c
  assert.equal(classifyCorrection(true, false), "unsuccessful"); // c → i
  assert.equal(classifyCorrection(false, false), "unsuccessful"); // i → i
});

// The 6 cases: o_i right/wrong × corrections all-right/mixed/all-wrong (H = 3).
const SIX_T1 = [true, true, true, false, false, false];
const SIX_T1_PRIME = [
  [true, true, true],
  [true, false, true],
  [false, false, false],
  [true, true, true],
  [false, true, false],
  [false, false, false],
];

Deno.test("selectLayer2Groups() discards only wrong o_i with all-wrong corrections", () => {
  assert.deepEqual(
    selectLayer2Groups(SIX_T1, SIX_T1_PRIME, "paper"),
    [true, true, true, true, true, false],
  );
  assert.deepEqual(selectLayer2Groups(SIX_T1, SIX_T1_PRIME, "keep_all"), Array(6).fill(true));
  assert.deepEqual(selectLayer2Groups([], [], "paper"), []);
});

Deno.test("selectLayer2Groups() names the index when the shapes disagree", () => {
  assert.throws(
    () => selectLayer2Groups([true, false], [[true]], "paper"),
    new TypeError(
      "Cannot select Layer-2 groups: layer2Correct must hold one group per Layer-1 response (2): current length is 1",
    ),
  );
  assert.throws(
    () => selectLayer2Groups([true, false, true], [[true, true], [true, true], [false]], "paper"),
    new TypeError(
      "Cannot select Layer-2 groups: layer2Correct[2] must hold H = 2 corrections like layer2Correct[0]: current length is 1",
    ),
  );
  assert.throws(() => selectLayer2Groups([true], [[]], "paper"), /layer2Correct\[0\]/);
  assert.throws(
    () => selectLayer2Groups([true], [[true]], "best" as "paper"),
    RangeError,
  );
});

// --- metrics ---

Deno.test("mgrpoMetrics() equals hand-computed values on a table of verdicts", () => {
  // N = 5, H = 2.
  const t1 = [true, true, false, false, false];
  const t1Prime = [[true, true], [true, false], [true, true], [false, true], [false, false]];
  const keep = selectLayer2Groups(t1, t1Prime, "paper"); // drops i = 4 (wrong, all wrong)
  assert.deepEqual(keep, [true, true, true, true, false]);
  const m = mgrpoMetrics(t1, t1Prime, keep);
  // Acc@t1 = 2/5
  assertClose(m["mgrpo/acc_t1"]!, 0.4);
  // Acc@t1' = (2/2 + 1/2 + 2/2 + 1/2 + 0/2) / 5 = 3/5
  assertClose(m["mgrpo/acc_t1_prime"]!, 0.6);
  // Δi→c: wrong o_i with a right correction: i=2 (2 pairs), i=3 (1 pair) → 3/10
  assertClose(m["mgrpo/delta_i_to_c"]!, 0.3);
  // Δc→i: right o_i with a wrong correction: i=1 (1 pair) → 1/10
  assertClose(m["mgrpo/delta_c_to_i"]!, 0.1);
  // Acc@t1' − Acc@t1 = 0.6 − 0.4 = 0.2 = Δi→c − Δc→i = 0.3 − 0.1
  assertClose(m["mgrpo/delta_t1_t1_prime"]!, 0.2);
  assertClose(
    m["mgrpo/acc_t1_prime"]! - m["mgrpo/acc_t1"]!,
    m["mgrpo/delta_i_to_c"]! - m["mgrpo/delta_c_to_i"]!,
  );
  // wrong o_i: i = 2, 3, 4; at least one right correction: i = 2, 3 → 2/3
  assertClose(m["mgrpo/correction_rate"]!, 2 / 3);
  // right o_i: i = 0, 1; all corrections right: i = 0 → 1/2
  assertClose(m["mgrpo/confirmation_rate"]!, 0.5);
  // one of 5 groups dropped
  assertClose(m["mgrpo/discarded_frac"]!, 0.2);
  // pairs: i→c = 2 + 1 = 3; c→c = 2 + 1 = 3; unsuccessful = 1 (c→i, i=1) + 1 (i=3) + 2 (i=4) = 4
  assert.equal(m["mgrpo/n_correction"], 3);
  assert.equal(m["mgrpo/n_confirmation"], 3);
  assert.equal(m["mgrpo/n_unsuccessful"], 4);
  assert.equal(m["mgrpo/n_groups"], 5);
});

Deno.test("mgrpoMetrics() keeps Acc@t1' − Acc@t1 = Δi→c − Δc→i on the six cases", () => {
  const m = mgrpoMetrics(SIX_T1, SIX_T1_PRIME, selectLayer2Groups(SIX_T1, SIX_T1_PRIME, "paper"));
  // Acc@t1 = 3/6; Acc@t1' = (3 + 2 + 0 + 3 + 1 + 0) / 18 = 9/18
  assertClose(m["mgrpo/acc_t1"]!, 0.5);
  assertClose(m["mgrpo/acc_t1_prime"]!, 0.5);
  // Δi→c = (3 + 1) / 18; Δc→i = (1 + 3) / 18
  assertClose(m["mgrpo/delta_i_to_c"]!, 4 / 18);
  assertClose(m["mgrpo/delta_c_to_i"]!, 4 / 18);
  assertClose(m["mgrpo/delta_t1_t1_prime"]!, 0);
  // corrected: i = 3, 4 of 3 wrong; confirmed: i = 0 of 3 right; discarded: i = 5
  assertClose(m["mgrpo/correction_rate"]!, 2 / 3);
  assertClose(m["mgrpo/confirmation_rate"]!, 1 / 3);
  assertClose(m["mgrpo/discarded_frac"]!, 1 / 6);
  // c→c = 3 + 2; i→c = 3 + 1; unsuccessful = 1 + 3 + 2 + 3
  assert.equal(m["mgrpo/n_confirmation"], 5);
  assert.equal(m["mgrpo/n_correction"], 4);
  assert.equal(m["mgrpo/n_unsuccessful"], 9);
});

Deno.test("mgrpoMetrics() gives rate 0 for an empty case and rejects bad shapes", () => {
  const m = mgrpoMetrics([true], [[false]], [true]);
  assert.equal(m["mgrpo/correction_rate"], 0); // no wrong o_i
  assert.equal(m["mgrpo/confirmation_rate"], 0); // the right o_i was not confirmed
  assert.equal(m["mgrpo/delta_c_to_i"], 1);
  assert.throws(() => mgrpoMetrics([], [], []), RangeError);
  assert.throws(
    () => mgrpoMetrics([true, false], [[true], [true]], [true]),
    new TypeError(
      "Cannot compute MGRPO metrics: keep must hold one flag per Layer-1 response (2): current length is 1",
    ),
  );
  assert.throws(() => mgrpoMetrics([true, false], [[true], [true, false]], [true, true]), /\[1\]/);
});

Deno.test("twoTurnMetrics() equals hand-computed Table 2 columns", () => {
  const table = [
    { t1: true, t1Prime: true, t2: true }, // c → c
    { t1: false, t1Prime: false, t2: true }, // i → c
    { t1: false, t1Prime: true, t2: false }, // c → i
    { t1: true, t1Prime: true, t2: true }, // c → c
    { t1: false, t1Prime: false, t2: true }, // i → c
  ];
  const m = twoTurnMetrics(table);
  // Acc@t1 = 2/5, Acc@t1' = 3/5, Acc@t2 = 4/5, Δ = 4/5 − 3/5 = 1/5 = 2/5 − 1/5
  assertClose(m.acc_t1, 0.4);
  assertClose(m.acc_t1_prime, 0.6);
  assertClose(m.acc_t2!, 0.8);
  assertClose(m.delta_t1_prime_t2!, 0.2);
  assertClose(m.delta_i_to_c!, 0.4);
  assertClose(m.delta_c_to_i!, 0.2);
  assertClose(m.delta_t1_prime_t2!, m.delta_i_to_c! - m.delta_c_to_i!);
});

Deno.test("twoTurnMetrics() leaves the t2 columns out without t2 and rejects mixed rows", () => {
  assert.deepEqual(
    twoTurnMetrics([{ t1: true, t1Prime: false }, { t1: false, t1Prime: false }]),
    { acc_t1: 0.5, acc_t1_prime: 0 },
  );
  assert.throws(
    () => twoTurnMetrics([{ t1: true, t1Prime: true, t2: true }, { t1: true, t1Prime: true }]),
    new TypeError(
      "Cannot compute two-turn metrics: table[1].t2 must be set like table[0].t2: current value is undefined",
    ),
  );
  assert.throws(() => twoTurnMetrics([]), RangeError);
});

// --- advantages ---

const L2_REWARDS = [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]];
const L2_KEEP = [true, false, true];

Deno.test("layer2Advantages() runs GRPO within kept groups and zeros discarded ones", () => {
  const a = layer2Advantages(L2_REWARDS, L2_KEEP, "group");
  assert.equal(a.length, 3);
  // group 0: mean 0.5, unbiased std sqrt(1/3) = 0.57735 → ±0.5 / 0.57745 = ±0.86588
  assertAllClose(a[0]!, [0.86588, -0.86588, -0.86588, 0.86588], 1e-4);
  assert.deepEqual([...a[1]!], [0, 0, 0, 0]);
  // group 2: mean 0.75, std sqrt((3·0.0625 + 0.5625) / 3) = 0.5 → 0.25 / 0.5001, −0.75 / 0.5001
  assertAllClose(a[2]!, [0.49990, 0.49990, 0.49990, -1.49970], 1e-4);
  // "none": plain R − mean(R_group)
  const raw = layer2Advantages(L2_REWARDS, L2_KEEP, "none");
  assert.deepEqual([...raw[0]!], [0.5, -0.5, -0.5, 0.5]);
  assert.deepEqual([...raw[1]!], [0, 0, 0, 0]);
  assert.deepEqual([...raw[2]!], [0.25, 0.25, 0.25, -0.75]);
});

Deno.test("layer2Advantages() takes the batch std over kept groups only", () => {
  const a = layer2Advantages(L2_REWARDS, L2_KEEP, "batch");
  // kept rewards [1,0,0,1, 1,1,1,0]: mean 0.625, Σ(r − mean)² = 5·0.140625 + 3·0.390625 = 1.875,
  // std = sqrt(1.875 / 7) = 0.517549 → group 0: ±0.5 / 0.517649 = ±0.96591,
  // group 2: 0.25 / 0.517649 = 0.48295, −0.75 / 0.517649 = −1.44886
  assertAllClose(a[0]!, [0.96591, -0.96591, -0.96591, 0.96591], 1e-4);
  assert.deepEqual([...a[1]!], [0, 0, 0, 0]);
  assertAllClose(a[2]!, [0.48295, 0.48295, 0.48295, -1.44886], 1e-4);
  assert.deepEqual(layer2Advantages([], [], "batch"), []);
  assert.throws(() => layer2Advantages([[1, 0], [1]], [true, true], "group"), /rewards\[1\]/);
  assert.throws(() => layer2Advantages([[1, 0]], [true, true], "group"), TypeError);
});

Deno.test("layer2Advantages() is keptGroupAdvantages() with each group's flag on its H rows", () => {
  // The function GRPO's Learner side calls with a Layer-2 part's per-rollout keep.
  const keep = L2_KEEP.flatMap((k) => [k, k, k, k]);
  for (const scale of ["group", "batch", "none"] as const) {
    const grpo = keptGroupAdvantages(L2_REWARDS.flat(), 4, { scaleRewards: scale, keep });
    assert.deepEqual(layer2Advantages(L2_REWARDS, L2_KEEP, scale).flatMap((g) => [...g]), [
      ...grpo,
    ], scale);
  }
});
