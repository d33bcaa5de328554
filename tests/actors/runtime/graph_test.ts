import assert from "node:assert/strict";
import {
  type ActorContext,
  type ActorFailed,
  ActorFailedError,
  type ActorLogic,
} from "../../../actors/runtime/actor.ts";
import { ChannelClosedError } from "../../../actors/runtime/channel.ts";
import { GraphBuilder } from "../../../actors/runtime/graph.ts";

type Start = { type: "Start"; count: number };
type Num = { type: "Num"; n: number };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every millisecond; throws after `timeoutMs` (a hang guard, not a speed goal). */
async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("Condition not met within timeout");
    await delay(1);
  }
}

/** Emits Num 1..count to "doubler" for each Start. */
const source: ActorLogic<{ emitted: number }, Start> = {
  init: () => ({ emitted: 0 }),
  async handle(state, message, ctx) {
    for (let n = 1; n <= message.count; n++) {
      await ctx.send("doubler", { type: "Num", n });
    }
    return { emitted: state.emitted + message.count };
  },
};

/** Forwards 2n to the sink named by its input. */
const doubler: ActorLogic<string, Num, string> = {
  init: (output) => output,
  async handle(output, message, ctx) {
    await ctx.send(output, { type: "Num", n: message.n * 2 });
  },
};

Deno.test("Graph delivers a 3-stage pipeline's values in order", async () => {
  const graph = new GraphBuilder({ capacity: 2 })
    .actor("source", source, undefined)
    .actor("doubler", doubler, "out")
    .sink("out", { capacity: 1 })
    .build();
  await graph.start();
  await graph.send("source", { type: "Start", count: 5 });

  const out = graph.sink<Num>("out");
  const values: number[] = [];
  for (let i = 0; i < 5; i++) values.push((await out.receive()).n);
  assert.deepEqual(values, [2, 4, 6, 8, 10]);

  await waitFor(() => graph.stats().doubler?.handled === 5);
  const stats = graph.stats();
  assert.equal(stats.source?.handled, 1);
  assert.equal(stats.doubler?.queueDepth, 0);
  await graph.stop();
  await graph.done;
  assert.equal(graph.failure, undefined);
  assert.equal(graph.stats().source?.state, "stopped");
  assert.equal(graph.stats().doubler?.state, "stopped");
});

Deno.test("Graph ends every actor, even one stuck in ctx.send, when an actor throws", async () => {
  type Rollouts = { type: "Rollouts"; rewards: number[] };
  const reports: ActorFailed[] = [];
  // The stop closes a state only once the actor's loop has ended (a loop it gives up on at
  // stopTimeoutMs is closed later, if ever): these record whose loops the stop ended.
  const closedActors: string[] = [];
  const verifier: ActorLogic<void, Rollouts> = {
    init() {},
    handle(_state, message) {
      if (message.rewards.some((r) => r < 0)) throw new Error("negative reward");
    },
    close: () => void closedActors.push("verifier"),
  };
  // Stuck in ctx.send: "full" has capacity 1 and nobody reads it.
  const producer: ActorLogic<void, Start> = {
    init() {},
    async handle(_state, message, ctx) {
      for (let n = 0; n < message.count; n++) await ctx.send("full", { type: "Num", n });
    },
    close: () => void closedActors.push("producer"),
  };
  const idle: ActorLogic<void, Num> = {
    init() {},
    handle() {},
    close: () => void closedActors.push("idle"),
  };
  // A stop timeout no stop should come near: the graph must not need it to end.
  const graph = new GraphBuilder({
    onFailure: (report) => reports.push(report),
    stopTimeoutMs: 10_000,
  })
    .actor("verifier", verifier, undefined)
    .actor("producer", producer, undefined)
    .actor("idle", idle, undefined)
    .sink("out")
    .sink("full", { capacity: 1 })
    .build();
  await graph.start();
  await graph.send("producer", { type: "Start", count: 3 });
  await waitFor(() => graph.stats().producer?.state === "running");
  const pendingReceive = graph.sink("out").receive().catch((e) => e);

  await graph.send("verifier", { type: "Rollouts", rewards: [1, -1] });
  const error = await graph.done.catch((e) => e);

  // Every loop ended, the producer's blocked send included: no actor was given up on.
  assert.deepEqual(closedActors.sort(), ["idle", "producer", "verifier"]);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "verifier");
  assert.equal(error.messageType, "Rollouts");
  assert.equal(error.message, 'Actor "verifier" failed while handling "Rollouts": negative reward');
  assert.equal((error.cause as Error).message, "negative reward");
  assert.deepEqual(graph.failure, {
    type: "ActorFailed",
    actor: "verifier",
    message: "Rollouts",
    cause: error.cause,
  });
  assert.deepEqual(reports, [graph.failure]);

  const closed = await pendingReceive;
  assert.ok(closed instanceof ChannelClosedError);
  assert.equal(closed.reason, error);
  assert.equal(graph.channelsClosed(), true);
  const stats = graph.stats();
  assert.equal(stats.verifier?.state, "failed");
  assert.equal(stats.producer?.state, "stopped");
  assert.equal(stats.idle?.state, "stopped");
  assert.equal(stats.producer?.handled, 0, "an interrupted handler is not counted");
  const late = await graph.send("idle", { type: "Num", n: 1 }).catch((e) => e);
  assert.ok(late instanceof ChannelClosedError);
  assert.equal(late.reason, error);
});

Deno.test("Graph.start() rejects when an actor's init throws", async () => {
  const broken: ActorLogic<void, Num, number> = {
    init(limit) {
      throw new RangeError(`limit must be > 0: current value is ${limit}`);
    },
    handle() {},
  };
  const graph = new GraphBuilder()
    .actor("fine", doubler, "out")
    .actor("broken", broken, -1)
    .sink("out")
    .build();
  const error = await graph.start().catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "broken");
  assert.equal(error.messageType, "init");
  assert.equal(
    error.message,
    'Actor "broken" failed while handling "init": limit must be > 0: current value is -1',
  );
  await assert.rejects(graph.done, (e) => e === error);
  assert.equal(graph.channelsClosed(), true);
  assert.equal(graph.stats().fine?.state, "stopped");
});

Deno.test("Graph.stop() closes every channel, ends every loop and runs close hooks", async () => {
  const closedStates: unknown[] = [];
  const seenSignals: AbortSignal[] = [];
  const counter: ActorLogic<number, Num> = {
    init: (_input, ctx) => {
      seenSignals.push(ctx.signal);
      return 0;
    },
    handle: (state, message) => state + message.n,
    close: (state) => {
      closedStates.push(state);
    },
  };
  // Waits on ctx.signal: stop() must interrupt it without reporting a failure.
  const waiter: ActorLogic<string, Start> = {
    init: () => "waiter state",
    handle: (_state, _message, ctx: ActorContext) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      }),
    close: (state) => {
      closedStates.push(state);
    },
  };
  // A stop timeout no stop should come near: the waiter must end because of the signal.
  const graph = new GraphBuilder({ stopTimeoutMs: 10_000 })
    .actor("counter", counter, undefined)
    .actor("waiter", waiter, undefined)
    .sink("out")
    .build();
  await graph.start();
  await graph.send("counter", { type: "Num", n: 3 });
  await graph.send("counter", { type: "Num", n: 4 });
  await graph.send("waiter", { type: "Start", count: 1 });
  await waitFor(() => graph.stats().counter?.handled === 2);
  await waitFor(() => graph.stats().waiter?.state === "running");
  assert.equal(graph.channelsClosed(), false);

  await graph.stop("user stop");
  // The stop closed both states itself: the aborted signal ended the waiter's handler, so the
  // stop did not give up on it (a state it gives up on is closed only when its handler returns).
  assert.deepEqual(closedStates.sort(), [7, "waiter state"].sort());
  await graph.done;
  assert.equal(graph.failure, undefined);
  assert.equal(graph.channelsClosed(), true);
  assert.equal(seenSignals[0]?.aborted, true);
  assert.equal(seenSignals[0]?.reason, "user stop");
  for (const stats of Object.values(graph.stats())) assert.equal(stats.state, "stopped");
  const sinkError = await graph.sink("out").receive().catch((e) => e);
  assert.ok(sinkError instanceof ChannelClosedError);
  assert.equal(sinkError.reason, "user stop");
  await graph.stop("twice"); // idempotent
});

Deno.test("Graph.stop() leaves buffered sink values to drain", async () => {
  const graph = new GraphBuilder()
    .actor("doubler", doubler, "out")
    .sink("out", { capacity: 4 })
    .build();
  await graph.start();
  await graph.send("doubler", { type: "Num", n: 1 });
  await graph.send("doubler", { type: "Num", n: 2 });
  await waitFor(() => graph.stats().doubler?.handled === 2);
  await graph.stop();
  const drained: number[] = [];
  for await (const message of graph.sink<Num>("out")) drained.push(message.n);
  assert.deepEqual(drained, [2, 4]);
});

Deno.test("Graph restarts an actor with maxRestarts 1 that throws once and redelivers the message", async () => {
  let inits = 0;
  const thrown = new Set<number>();
  const closed: number[][] = [];
  // Throws the first time it sees a multiple of 10 and on every negative value.
  const flaky: ActorLogic<{ seen: number[] }, Num> = {
    maxRestarts: 1,
    init: () => {
      inits++;
      return { seen: [] };
    },
    async handle(state, message, ctx) {
      if (message.n < 0) throw new Error(`bad value ${message.n}`);
      if (message.n % 10 === 0 && !thrown.has(message.n)) {
        thrown.add(message.n);
        throw new Error(`flaky on ${message.n}`);
      }
      const seen = [...state.seen, message.n];
      await ctx.send("out", { type: "Seen", all: seen });
      return { seen };
    },
    close: (state) => {
      closed.push(state.seen);
    },
  };
  const graph = new GraphBuilder()
    .actor("flaky", flaky, undefined)
    .sink("out")
    .build();
  await graph.start();
  const out = graph.sink<{ type: "Seen"; all: number[] }>("out");
  await graph.send("flaky", { type: "Num", n: 1 });
  assert.deepEqual((await out.receive()).all, [1]);
  await graph.send("flaky", { type: "Num", n: 10 });
  await graph.send("flaky", { type: "Num", n: 2 });
  // The restart closed the old state, re-ran init and delivered 10 again to the new state.
  assert.deepEqual((await out.receive()).all, [10]);
  assert.deepEqual((await out.receive()).all, [10, 2]);
  assert.equal(inits, 2);
  assert.deepEqual(closed, [[1]]);
  assert.equal(graph.stats().flaky?.restarts, 1);
  await waitFor(() => graph.stats().flaky?.handled === 3);
  assert.equal(graph.failure, undefined);

  // No restart left: a message that fails again stops the graph.
  await graph.send("flaky", { type: "Num", n: -2 });
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.message, 'Actor "flaky" failed while handling "Num": bad value -2');
  assert.equal(graph.stats().flaky?.handled, 3);
});

Deno.test("Graph applies backpressure: a slow actor with capacity 1 makes ctx.send wait", async () => {
  const sent: number[] = [];
  const received: number[] = [];
  const gates: Array<() => void> = [];
  const upstream: ActorLogic<void, Start> = {
    init() {},
    async handle(_state, message, ctx) {
      for (let n = 1; n <= message.count; n++) {
        await ctx.send("slow", { type: "Num", n });
        sent.push(n);
      }
    },
  };
  const slow: ActorLogic<void, Num> = {
    init() {},
    async handle(_state, message) {
      received.push(message.n);
      await new Promise<void>((resolve) => gates.push(resolve));
    },
  };
  const graph = new GraphBuilder({ capacity: 8 })
    .actor("upstream", upstream, undefined)
    .actor("slow", slow, undefined, { capacity: 1 })
    .build();
  await graph.start();
  await graph.send("upstream", { type: "Start", count: 4 });

  // 1 is being handled, 2 fills the mailbox, the send of 3 waits.
  await waitFor(() => received.length === 1 && sent.length === 2);
  await delay(20);
  assert.deepEqual(sent, [1, 2]);
  assert.equal(graph.stats().slow?.queueDepth, 1);
  assert.equal(graph.stats().upstream?.state, "running");

  gates.shift()?.();
  await waitFor(() => received.length === 2 && sent.length === 3);
  await delay(20);
  assert.deepEqual(sent, [1, 2, 3]);
  assert.deepEqual(received, [1, 2]);

  while (received.length < 4 || gates.length > 0) {
    gates.shift()?.();
    await delay(1);
  }
  assert.deepEqual(sent, [1, 2, 3, 4]);
  assert.deepEqual(received, [1, 2, 3, 4]);
  await waitFor(() => graph.stats().slow?.handled === 4);
  assert.ok((graph.stats().slow?.busyMs ?? 0) >= 20, "busyMs counts time inside handle");
  await graph.stop();
  await graph.done;
});

Deno.test("Graph.send() to an unknown name fails with the known names", async () => {
  const graph = new GraphBuilder()
    .actor("doubler", doubler, "ouput") // typo: the sink is "out"
    .sink("out")
    .build();
  await assert.rejects(graph.send("dobler", { type: "Num", n: 1 }), {
    name: "RangeError",
    message: 'Cannot send "Num" to unknown actor "dobler": known names are "doubler", "out"',
  });
  assert.throws(() => graph.sink("doubler"), {
    name: "RangeError",
    message: 'Cannot read sink "doubler": no sink has that name: known sinks are "out"',
  });

  await graph.start();
  await graph.send("doubler", { type: "Num", n: 1 });
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(
    error.message,
    'Actor "doubler" failed while handling "Num": ' +
      'Cannot send "Num" from "doubler" to unknown actor "ouput": known names are "doubler", "out"',
  );
});

Deno.test("GraphBuilder.actor() rejects duplicate names and bad capacities", () => {
  const builder = new GraphBuilder().actor("a", doubler, "out");
  assert.throws(() => builder.sink("a"), {
    message: 'Cannot add "a" to graph: the name is already taken',
  });
  assert.throws(() => builder.actor("b", doubler, "out", { capacity: 0 }), {
    name: "RangeError",
    message: 'Cannot add actor "b": capacity must be an integer >= 1: current value is 0',
  });
  assert.throws(() => new GraphBuilder({ capacity: -2 }), RangeError);
});

Deno.test("Graph.stop() gives up on a handler that ignores the signal, then closes it", async () => {
  const closed: string[] = [];
  let release = () => {};
  let returned = false;
  const stubborn: ActorLogic<string, Num> = {
    init: () => "stubborn state",
    handle: async () => {
      await new Promise<void>((resolve) => release = resolve);
      returned = true;
    },
    close: (state) => {
      closed.push(state);
    },
  };
  const graph = new GraphBuilder({ stopTimeoutMs: 50 })
    .actor("stubborn", stubborn, undefined)
    .build();
  await graph.start();
  await graph.send("stubborn", { type: "Num", n: 1 });
  await waitFor(() => graph.stats().stubborn?.state === "running");

  // Only if stop() waited for the handler would this release be what ends the stop.
  const fallback = setTimeout(() => release(), 10_000);
  const started = performance.now();
  await graph.stop();
  const elapsed = performance.now() - started;
  clearTimeout(fallback);
  assert.ok(elapsed >= 40, `stop waited ${elapsed} ms`);
  assert.equal(returned, false, "stop() gave up on the handler instead of waiting for it");
  await graph.done;
  assert.deepEqual(closed, [], "a state still in use is not closed");

  release();
  await waitFor(() => closed.length === 1);
  assert.deepEqual(closed, ["stubborn state"]);
});

Deno.test("Graph failure is not an unhandled rejection when done is never awaited", async () => {
  const thrower: ActorLogic<void, Num> = {
    init() {},
    handle() {
      throw new Error("boom");
    },
  };
  let report: ActorFailed | undefined;
  const graph = new GraphBuilder({ onFailure: (r) => report = r })
    .actor("thrower", thrower, undefined)
    .build();
  await graph.start();
  await graph.send("thrower", { type: "Num", n: 1 });
  await waitFor(() => report !== undefined && graph.channelsClosed());
  await delay(10);
  assert.equal(report?.actor, "thrower");
  assert.equal(report?.message, "Num");
  assert.equal(graph.stats().thrower?.state, "failed");
});
