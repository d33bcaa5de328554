import assert from "node:assert/strict";
import {
  type ActorContext,
  ActorFailedError,
  type ActorLogic,
} from "../../../actors/runtime/actor.ts";
import {
  FaultSpecSchema,
  FaultsSchema,
  parseFaults,
  withFaults,
} from "../../../actors/runtime/faults.ts";
import { type Graph, GraphBuilder, type GraphOptions } from "../../../actors/runtime/graph.ts";

// --- a small rollout-like chain: source → worker → sink "out" ---

/** Driver → source: produce `count` items of step `step`. */
type Next = { type: "Next"; step: number; count: number };
/** Source → worker: one item. */
type Item = { type: "Item"; step: number; id: string };
/** Worker → sink: one processed item, with how many items this worker state has seen. */
type Done = { type: "Done"; step: number; id: string; seenByState: number };

/** Sends every item of a step in one handler (the sends are the handler's only effect). */
const source: ActorLogic<void, Next> = {
  init() {},
  async handle(_state, message, ctx) {
    for (let i = 0; i < message.count; i++) {
      await ctx.send("worker", { type: "Item", step: message.step, id: `${message.step}-${i}` });
    }
  },
};

/** Counts items and forwards each one at the very end of its handler. */
const worker: ActorLogic<{ seen: number }, Item> = {
  init: () => ({ seen: 0 }),
  async handle(state, message, ctx) {
    const seen = state.seen + 1;
    const done: Done = { type: "Done", step: message.step, id: message.id, seenByState: seen };
    await ctx.send("out", done);
    return { seen };
  },
};

const STEPS = [1, 2, 3] as const;
const PER_STEP = 4;

function chain(options: GraphOptions): Graph {
  return new GraphBuilder({ capacity: 2, ...options })
    .actor("source", source, undefined)
    .actor("worker", worker, undefined)
    .sink("out", { capacity: 64 })
    .build();
}

/**
 * Sends every step to `graph` and reads `expected` results (failing after `timeoutMs`, a hang
 * guard, not a speed goal).
 */
async function runSteps(graph: Graph, expected: number, timeoutMs = 10_000): Promise<Done[]> {
  await graph.start();
  for (const step of STEPS) await graph.send("source", { type: "Next", step, count: PER_STEP });
  const out = graph.sink<Done>("out");
  const received: Done[] = [];
  const signal = AbortSignal.timeout(timeoutMs);
  while (received.length < expected) received.push(await out.receive({ signal }));
  return received;
}

/** Every id of every step, exactly once, in the order each step produced them. */
function expectedIds(step: number): string[] {
  return Array.from({ length: PER_STEP }, (_, i) => `${step}-${i}`);
}

function assertEachItemOnce(received: Done[]): void {
  assert.equal(received.length, STEPS.length * PER_STEP);
  for (const step of STEPS) {
    const ids = received.filter((d) => d.step === step).map((d) => d.id);
    assert.deepEqual(ids, expectedIds(step), `step ${step}`);
  }
}

/** Polls `condition` every millisecond; throws after `timeoutMs` (a hang guard, not a speed goal). */
async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("Condition not met within timeout");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function stopCleanly(graph: Graph): Promise<void> {
  await graph.stop();
  await graph.done;
  assert.equal(graph.failure, undefined);
}

// --- supervision with injected faults ---

Deno.test("GraphOptions.faults: a throw at step 2 with maxRestarts 1 loses and repeats no item", async () => {
  const graph = chain({
    maxRestarts: { worker: 1 },
    faults: [{ actor: "worker", step: 2, kind: "throw" }],
  });
  const received = await runSteps(graph, STEPS.length * PER_STEP);
  assertEachItemOnce(received);
  // The restart re-ran init: the failed item 2-0 was the new state's first.
  assert.deepEqual(
    received.filter((d) => d.step === 2).map((d) => d.seenByState),
    [1, 2, 3, 4],
  );
  // `handled` counts once the handler returns, just after its send.
  await waitFor(() => graph.stats().worker?.handled === STEPS.length * PER_STEP);
  const stats = graph.stats();
  assert.equal(stats.worker?.restarts, 1);
  assert.equal(stats.source?.restarts, 0);
  await stopCleanly(graph);
  assert.equal(
    (await graph.sink("out").receive({ signal: AbortSignal.timeout(10) }).catch((e) => e)).name,
    "ChannelClosedError",
    "no item came twice",
  );
});

Deno.test("GraphOptions.faults: a throw in a handler that sends several messages repeats none", async () => {
  // The fault throws before the source's handler runs, so none of step 2's sends happened.
  const graph = chain({
    maxRestarts: { source: 1 },
    faults: [{ actor: "source", step: 2, kind: "throw", message_type: "Next" }],
  });
  const received = await runSteps(graph, STEPS.length * PER_STEP);
  assertEachItemOnce(received);
  await waitFor(() => graph.stats().source?.handled === STEPS.length);
  assert.equal(graph.stats().source?.restarts, 1);
  await stopCleanly(graph);
});

Deno.test("GraphOptions.faults: a throw with maxRestarts 0 fails the graph naming actor and message", async () => {
  const graph = chain({ faults: [{ actor: "worker", step: 2, kind: "throw" }] });
  await graph.start();
  for (const step of STEPS) {
    await graph.send("source", { type: "Next", step, count: PER_STEP }).catch(() => {});
  }
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "worker");
  assert.equal(error.messageType, "Item");
  assert.equal(
    error.message,
    'Actor "worker" failed while handling "Item": ' +
      'injected fault: throw in actor "worker" at step 2 while handling "Item" (1 of 1)',
  );
  assert.equal(graph.stats().worker?.state, "failed");
  assert.equal(graph.stats().worker?.restarts, 0);
  // Step 1 went through before the fault.
  const drained: Done[] = [];
  for await (const done of graph.sink<Done>("out")) drained.push(done);
  assert.deepEqual(drained.map((d) => d.id), expectedIds(1));
});

Deno.test("GraphOptions.faults: a throw twice with maxRestarts 1 fails, with maxRestarts 2 completes", async () => {
  const faults = [{ actor: "worker", step: 2, kind: "throw", times: 2 }] as const;
  const failing = chain({ maxRestarts: { worker: 1 }, faults });
  await failing.start();
  for (const step of STEPS) {
    await failing.send("source", { type: "Next", step, count: PER_STEP }).catch(() => {});
  }
  const error = await failing.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "worker");
  assert.match(error.message, /\(2 of 2\)$/, "the redelivered message met the fault again");
  assert.equal(failing.stats().worker?.restarts, 1);

  const passing = chain({ maxRestarts: { worker: 2 }, faults });
  assertEachItemOnce(await runSteps(passing, STEPS.length * PER_STEP));
  assert.equal(passing.stats().worker?.restarts, 2);
  await stopCleanly(passing);
});

Deno.test("GraphOptions.faults: a delay holds step 2 back but loses nothing", async () => {
  const graph = chain({ faults: [{ actor: "worker", step: 2, kind: "delay", ms: 150 }] });
  const started = performance.now();
  const received = await runSteps(graph, STEPS.length * PER_STEP);
  const elapsed = performance.now() - started;
  assertEachItemOnce(received);
  assert.ok(elapsed >= 140, `took ${elapsed.toFixed(0)} ms`);
  assert.equal(graph.stats().worker?.restarts, 0);
  await stopCleanly(graph);
});

Deno.test("GraphOptions.faults: a stop cuts a delay short without a failure", async () => {
  // The stop closes a state only once the actor's loop has ended; a loop it gives up on at
  // stopTimeoutMs (here far shorter than the delay) is closed only when its handler returns.
  const closed: number[] = [];
  const graph = new GraphBuilder({
    capacity: 2,
    faults: [{ actor: "worker", step: 1, kind: "delay", ms: 60_000 }],
  })
    .actor("source", source, undefined)
    .actor("worker", { ...worker, close: (state) => void closed.push(state.seen) }, undefined)
    .sink("out", { capacity: 64 })
    .build();
  await graph.start();
  await graph.send("source", { type: "Next", step: 1, count: 1 });
  await waitFor(() => graph.stats().worker?.state === "running");
  await graph.stop();
  // The delay ended with the stop: the worker's loop was over, so the stop closed its state.
  assert.deepEqual(closed, [0], "the worker's state was closed by the stop");
  await graph.done;
  assert.equal(graph.failure, undefined);
  // The delayed item was never handled: nothing reached the sink.
  assert.equal(graph.stats().worker?.handled, 0);
  const drained: Done[] = [];
  for await (const done of graph.sink<Done>("out")) drained.push(done);
  assert.deepEqual(drained, []);
});

Deno.test("GraphOptions.exitWorker: an exit_worker fault drops a worker, then handles the message", async () => {
  const dropped: string[] = [];
  const graph = chain({
    faults: [{ actor: "worker", step: 3, kind: "exit_worker" }],
    exitWorker: (actor) => {
      dropped.push(actor);
    },
  });
  assertEachItemOnce(await runSteps(graph, STEPS.length * PER_STEP));
  assert.deepEqual(dropped, ["worker"]);
  assert.equal(graph.stats().worker?.restarts, 0);
  await stopCleanly(graph);
});

Deno.test("GraphOptions.faults: a message_type that never comes fires nothing", async () => {
  const graph = chain({
    faults: [{ actor: "worker", step: 2, kind: "throw", message_type: "Rollouts" }],
  });
  assertEachItemOnce(await runSteps(graph, STEPS.length * PER_STEP));
  await stopCleanly(graph);
});

Deno.test("GraphOptions.maxRestarts overrides the logic's own maxRestarts", async () => {
  const attempts: number[] = [];
  const failing: ActorLogic<void, { type: "Num"; n: number }> = {
    maxRestarts: 5,
    init() {},
    handle(_state, message) {
      attempts.push(message.n);
      throw new Error(`bad value ${message.n}`);
    },
  };
  const graph = new GraphBuilder({ maxRestarts: { failing: 2 } })
    .actor("failing", failing, undefined)
    .build();
  await graph.start();
  await graph.send("failing", { type: "Num", n: 7 });
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.message, 'Actor "failing" failed while handling "Num": bad value 7');
  assert.deepEqual(attempts, [7, 7, 7], "once, then redelivered once per restart");
  assert.equal(graph.stats().failing?.restarts, 2);
  assert.equal(graph.stats().failing?.handled, 0);
});

Deno.test("GraphOptions.restartDelayMs waits before each restart", async () => {
  const graph = chain({
    maxRestarts: { worker: 1 },
    restartDelayMs: 120,
    faults: [{ actor: "worker", step: 1, kind: "throw" }],
  });
  const started = performance.now();
  assertEachItemOnce(await runSteps(graph, STEPS.length * PER_STEP));
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 110, `took ${elapsed.toFixed(0)} ms`);
  assert.equal(graph.stats().worker?.restarts, 1);
  await stopCleanly(graph);
  assert.throws(() => new GraphBuilder({ restartDelayMs: -1 }), {
    name: "RangeError",
    message:
      "Cannot create graph: restartDelayMs must be a finite number >= 0: current value is -1",
  });
});

Deno.test("GraphBuilder.build() names the field and the known actors for an unknown actor", () => {
  const builder = (options: GraphOptions) =>
    new GraphBuilder(options)
      .actor("source", source, undefined)
      .actor("worker", worker, undefined)
      .sink("out");
  assert.throws(
    () =>
      builder({
        faults: [
          { actor: "worker", step: 1, kind: "throw" },
          { actor: "wroker", step: 2, kind: "throw" },
        ],
      }).build(),
    {
      name: "RangeError",
      message: 'Cannot build graph: field "faults[1].actor" names no actor: ' +
        'current value is "wroker": known actors are "source", "worker"',
    },
  );
  assert.throws(() => builder({ faults: [{ actor: "out", step: 1, kind: "throw" }] }).build(), {
    name: "RangeError",
    message: 'Cannot build graph: field "faults[0].actor" names no actor: ' +
      'current value is "out": known actors are "source", "worker"',
  });
  assert.throws(() => builder({ maxRestarts: { sampler: 1 } }).build(), {
    name: "RangeError",
    message: 'Cannot build graph: field "maxRestarts.sampler" names no actor: ' +
      'current value is "sampler": known actors are "source", "worker"',
  });
  assert.throws(() => builder({ maxRestarts: { worker: 1.5 } }).build(), {
    name: "RangeError",
    message: 'Cannot build graph: field "maxRestarts.worker": ' +
      "maxRestarts must be an integer >= 0: current value is 1.5",
  });
  assert.throws(
    () => builder({ faults: [{ actor: "worker", step: 0, kind: "throw" }] }).build(),
    { name: "TypeError", message: /^Invalid fault: field "faults\[0\]\.step": / },
  );
});

// --- the schema and the wrapper on their own ---

Deno.test("FaultSpecSchema defaults times and checks ms against the kind", () => {
  assert.deepEqual(FaultSpecSchema.parse({ actor: "verifier", step: 4, kind: "delay", ms: 50 }), {
    actor: "verifier",
    step: 4,
    kind: "delay",
    ms: 50,
    times: 1,
  });
  assert.deepEqual(FaultsSchema.parse(undefined), []);
  assert.equal(FaultSpecSchema.safeParse({ actor: "a", step: 1, kind: "delay" }).success, false);
  assert.equal(
    FaultSpecSchema.safeParse({ actor: "a", step: 1, kind: "throw", ms: 5 }).success,
    false,
  );
  assert.equal(FaultSpecSchema.safeParse({ actor: "a", step: 1, kind: "explode" }).success, false);
  assert.equal(
    FaultSpecSchema.safeParse({ actor: "a", step: 1, kind: "throw", tims: 2 }).success,
    false,
    "strict: a misspelt field is an error",
  );
  assert.throws(() => parseFaults([{ actor: "a", step: 1, kind: "throw", ms: 5 }]), {
    name: "TypeError",
    message: 'Invalid fault: field "faults[0].ms": must be left out when kind is not delay: ' +
      'kind is "throw"',
  });
});

Deno.test("withFaults() keeps its fired count across restarts of the state", async () => {
  let inits = 0;
  const handled: number[] = [];
  const inner: ActorLogic<number, Item> = {
    maxRestarts: 3,
    init: () => ++inits,
    handle(state) {
      handled.push(state);
    },
  };
  const wrapped = withFaults(inner, [{ actor: "w", step: 2, kind: "throw", times: 2 }], {
    name: "w",
  });
  assert.equal(wrapped.maxRestarts, 3);
  const ctx: ActorContext = {
    name: "w",
    send: () => Promise.resolve(),
    signal: new AbortController().signal,
  };
  const item: Item = { type: "Item", step: 2, id: "2-0" };
  await assert.rejects(
    async () => await wrapped.handle(await wrapped.init(undefined, ctx), item, ctx),
    {
      message: 'injected fault: throw in actor "w" at step 2 while handling "Item" (1 of 2)',
    },
  );
  await assert.rejects(
    async () => await wrapped.handle(await wrapped.init(undefined, ctx), item, ctx),
    {
      message: /\(2 of 2\)$/,
    },
  );
  await wrapped.handle(await wrapped.init(undefined, ctx), item, ctx);
  assert.deepEqual(handled, [3], "the inner handler ran only once the fault was spent");
  // Faults for other actors leave the logic as it is.
  assert.equal(withFaults(inner, [{ actor: "x", step: 2, kind: "throw" }], { name: "w" }), inner);
});

Deno.test("withFaults() calls the state's killWorker() for exit_worker without a hook", async () => {
  let kills = 0;
  type State = { killWorker(): void };
  const inner: ActorLogic<State, Item> = {
    init: () => ({
      killWorker() {
        kills++;
      },
    }),
    handle() {},
  };
  const ctx: ActorContext = {
    name: "w",
    send: () => Promise.resolve(),
    signal: new AbortController().signal,
  };
  const faults = [{ actor: "w", step: 1, kind: "exit_worker" }] as const;
  const wrapped = withFaults(inner, faults, { name: "w" });
  const state = await wrapped.init(undefined, ctx);
  await wrapped.handle(state, { type: "Item", step: 1, id: "1-0" }, ctx);
  assert.equal(kills, 1);

  const plain: ActorLogic<void, Item> = { init() {}, handle() {} };
  const noHook = withFaults(plain, faults, { name: "w" });
  await assert.rejects(
    async () => await noHook.handle(undefined, { type: "Item", step: 1, id: "1-0" }, ctx),
    {
      message: 'Cannot inject fault exit_worker in actor "w" at step 1 while handling "Item" ' +
        "(1 of 1): no exitWorker hook was given and the actor's state has no killWorker() method",
    },
  );
});
