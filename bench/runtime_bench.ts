/**
 * `deno bench --allow-read bench/runtime_bench.ts`: the actor runtime's own cost, with no
 * model math — one message through a {@linkcode Channel}, one actor-to-actor hop in a built
 * graph, and one training step's worth of GRPO-graph traffic with messages of the real sizes
 * and handlers that only forward.
 *
 * Measured on the 2-core dev machine (Deno 2.9.6, `deno bench` avg over 3 runs; the spread
 * is run-to-run noise of a shared machine):
 *
 * | what                                             | time/iter    |
 * | ------------------------------------------------ | ------------ |
 * | Channel send + receive, buffered                 | 0.42–0.59 µs |
 * | Channel handoff to a waiting receiver            | 0.51–0.70 µs |
 * | Graph driver → sink (1 hop)                      | 0.43–0.57 µs |
 * | Graph driver → A → B → sink (3 hops, round trip) | 4.5–4.7 µs   |
 * | per actor → actor hop ((3 hops − 1 hop) / 2)     | ≈ 2 µs       |
 * | GRPO step, real-size payloads (6 messages)       | 7–12 µs      |
 * | GRPO step, empty payloads (6 messages)           | 7.6–12 µs    |
 *
 * How this relates to a training step: fraction = per-step runtime cost / step time. A real
 * step of the default config takes about 3–5 s on this machine, so the runtime's share is
 * 12 µs / 3 s = 4 × 10⁻⁶ (0.0004 %) at worst and 7 µs / 5 s = 1.4 × 10⁻⁶ at best: the
 * mailboxes, routing and supervision are not what makes a step slow.
 * Message size does not matter in-process: messages are passed by reference, never copied or
 * re-validated, so the real-size and empty-payload steps cost the same. A slow training step
 * is the model math (sampling, teacher forcing, backward, AdamW) and the host copies done by
 * the actors themselves (e.g. `exportWeights()`), not the mailboxes.
 *
 * @module
 */
import { Channel } from "../actors/runtime/channel.ts";
import { type Graph, GraphBuilder } from "../actors/runtime/graph.ts";
import type { ActorLogic } from "../actors/runtime/actor.ts";
import type {
  Generate,
  Next,
  Query,
  Rollouts,
  Scored,
  StepStats,
  Weights,
} from "../actors/messages.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";

// --- one message through a channel ---

type Ping = { type: "Ping"; n: number };
const PING: Ping = { type: "Ping", n: 1 };
const channel = new Channel<Ping>(16);

Deno.bench({
  name: "Channel: send + receive, buffered",
  group: "channel",
  baseline: true,
  async fn() {
    await channel.send(PING);
    await channel.receive();
  },
});

Deno.bench({
  name: "Channel: handoff to a waiting receiver",
  group: "channel",
  async fn() {
    const received = channel.receive();
    await channel.send(PING);
    await received;
  },
});

// --- one hop actor → actor in a built graph ---

/** Forwards every message to the actor or sink named `to`. */
function forwarder(to: string): ActorLogic<void, Ping> {
  return {
    init() {},
    async handle(_state, message, ctx) {
      await ctx.send(to, message);
    },
  };
}

const hops: Graph = new GraphBuilder({ capacity: 16 })
  .actor("a", forwarder("b"), undefined)
  .actor("b", forwarder("out"), undefined)
  .sink("out")
  .build();
await hops.start();
const hopsOut = hops.sink<Ping>("out");

Deno.bench({
  name: "Graph: driver → sink (1 hop)",
  group: "graph hop",
  baseline: true,
  async fn() {
    await hops.send("out", PING);
    await hopsOut.receive();
  },
});

Deno.bench({
  name: "Graph: driver → A → B → sink (3 hops, round trip)",
  group: "graph hop",
  async fn() {
    await hops.send("a", PING);
    await hopsOut.receive();
  },
});

// --- a training step's worth of GRPO-graph traffic ---

/** The step's messages, each built once; handlers only stamp the step on them. */
interface StepMessages {
  generate: Generate;
  rollouts: Rollouts;
  scored: Scored;
  weights: Weights;
  stats: StepStats;
}

/** Messages of the default config's sizes: B = 8 prompts, G = 8, ~40-token completions. */
function realMessages(): StepMessages {
  const promptsPerStep = 8, n = 8, completionLength = 40, promptLength = 120;
  const queries: Query[] = Array.from({ length: promptsPerStep }, (_, i) => ({
    id: `q${i}`,
    question: `Ann has ${i} pens and gets ${i + 3} more. How many pens does she have?`,
    answer: 2 * i + 3,
    prompt: "x".repeat(promptLength),
    promptIds: Array.from({ length: promptLength }, (_, j) => (i + j) % 101),
  }));
  const params = { maxNewTokens: 48, temperature: 1, topP: 1, topK: 0, greedy: false };
  const generate: Generate = {
    type: "Generate",
    purpose: "train",
    step: 1,
    label: "train",
    queries,
    n,
    params,
  };
  const rollouts: Rollouts = {
    type: "Rollouts",
    purpose: "train",
    step: 1,
    label: "train",
    queries,
    n,
    policyVersion: 0,
    timings: { sampler: 1.5 },
    rollouts: Array.from({ length: promptsPerStep * n }, (_, i) => ({
      queryIndex: Math.floor(i / n),
      completionIds: Array.from({ length: completionLength }, (_, j) => (i * 7 + j) % 101),
      logprobs: Array.from({ length: completionLength }, (_, j) => -0.01 * ((i + j) % 300)),
      text: "<think>2+3=5</think>5".padEnd(completionLength, " "),
      finishReason: "stop",
    })),
  };
  const scored: Scored = {
    ...rollouts,
    type: "Scored",
    timings: { sampler: 1.5, verifier: 0.002 },
    verdicts: rollouts.rollouts.map((_, i) => ({
      reward: i % 2,
      correct: i % 2 === 1,
      parsed: String(i),
      reason: i % 2 === 1 ? "correct" : "wrong answer",
    })),
  };
  // The default model's parameters: 154,752 floats in 41 tensors.
  const tensors: Weights["tensors"] = {};
  for (const [name, shape] of Transformer.parameterShapes(TINY_MODEL_CONFIG)) {
    tensors[name] = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01);
  }
  const weights: Weights = { type: "Weights", version: 1, tensors };
  const metrics: Record<string, number> = {};
  for (let i = 0; i < 40; i++) metrics[`metric/${i}`] = i;
  const stats: StepStats = {
    type: "StepStats",
    step: 1,
    policyVersion: 1,
    metrics,
    samples: [{
      step: 1,
      prompt: queries[0]!.question,
      completions: rollouts.rollouts.slice(0, 4).map((r, i) => ({
        text: r.text,
        reward: scored.verdicts[i]!.reward,
        advantage: 0,
        correct: scored.verdicts[i]!.correct,
        reason: scored.verdicts[i]!.reason,
      })),
    }],
  };
  return { generate, rollouts, scored, weights, stats };
}

/** The same messages with every payload empty. */
function emptyMessages(): StepMessages {
  const real = realMessages();
  return {
    generate: { ...real.generate, queries: [] },
    rollouts: { ...real.rollouts, queries: [], rollouts: [] },
    scored: { ...real.scored, queries: [], rollouts: [], verdicts: [] },
    weights: { ...real.weights, tensors: {} },
    stats: { ...real.stats, metrics: {}, samples: [] },
  };
}

/**
 * The GRPO graph's shape (β = 0): prompt_source → sampler → verifier → learner, the
 * learner's weights back to the sampler, its stats to the `stats` sink.
 */
async function startGrpoShapedGraph(m: StepMessages): Promise<Graph> {
  const promptSource: ActorLogic<void, Next> = {
    init() {},
    async handle(_state, message, ctx) {
      await ctx.send("sampler", { ...m.generate, step: message.step });
    },
  };
  const sampler: ActorLogic<{ version: number }, Generate | Weights> = {
    init: () => ({ version: 0 }),
    async handle(state, message, ctx) {
      switch (message.type) {
        case "Weights":
          return { version: message.version };
        case "Generate":
          await ctx.send("verifier", {
            ...m.rollouts,
            step: message.step,
            policyVersion: state.version,
          });
          return state;
        default:
          throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
      }
    },
  };
  const verifier: ActorLogic<void, Rollouts> = {
    init() {},
    async handle(_state, message, ctx) {
      await ctx.send("learner", { ...m.scored, step: message.step });
    },
  };
  const learner: ActorLogic<{ version: number }, Scored> = {
    init: () => ({ version: 0 }),
    async handle(state, message, ctx) {
      const version = state.version + 1;
      await ctx.send("sampler", { ...m.weights, version });
      await ctx.send("stats", { ...m.stats, step: message.step, policyVersion: version });
      return { version };
    },
  };
  const graph = new GraphBuilder({ capacity: 4 })
    .actor("prompt_source", promptSource, undefined)
    .actor("sampler", sampler, undefined)
    .actor("verifier", verifier, undefined)
    .actor("learner", learner, undefined)
    .sink("stats")
    .sink("eval")
    .sink("events")
    .build();
  await graph.start();
  return graph;
}

/** One driver step as cli/train.ts runs it: Next in, StepStats out, the actors' stats read. */
function stepper(graph: Graph): () => Promise<void> {
  const stats = graph.sink<StepStats>("stats");
  let step = 0;
  return async () => {
    step++;
    await graph.send("prompt_source", { type: "Next", step });
    const out = await stats.receive();
    if (out.step !== step) {
      throw new Error(
        `Cannot run the step benchmark: stats out of order: current value is ${out.step}`,
      );
    }
    graph.stats();
  };
}

const realStep = stepper(await startGrpoShapedGraph(realMessages()));
const emptyStep = stepper(await startGrpoShapedGraph(emptyMessages()));

Deno.bench({
  name: "GRPO step: empty payloads (6 messages)",
  group: "grpo step",
  baseline: true,
  fn: emptyStep,
});

Deno.bench({
  name: "GRPO step: real-size payloads (64 rollouts × 40 tokens, 154,752-float weights)",
  group: "grpo step",
  fn: realStep,
});
