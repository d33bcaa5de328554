/**
 * The remote-actor mechanism (`remote.ts`) over in-memory ports and the Worker transport's
 * transfer list: forwarding with backpressure and order, validation on receipt, a lost host
 * named within the supervisor's report, and a restart that neither loses nor repeats a send.
 */
import assert from "node:assert/strict";
import {
  ActorFailedError,
  type ActorLogic,
  GraphBuilder,
  memoryPorts,
  type Port,
  remoteActor,
  serveActor,
} from "../../../actors/runtime/mod.ts";
import { transferList } from "../../../actors/runtime/worker_transport.ts";

type Next = { type: "Next"; step: number };

/** Forwards `Next` to `out` as `Next` with step × 10, then to `out` again with step × 100. */
const twice: ActorLogic<{ handled: number }, Next, { seen: number }> = {
  init: (input) => ({ handled: input.seen }),
  async handle(state, message, ctx) {
    await ctx.send("out", { type: "Next", step: message.step * 10 });
    await ctx.send("out", { type: "Next", step: message.step * 100 });
    return { handled: state.handled + 1 };
  },
};

function hostOn(port: Port, logic: ActorLogic<unknown, Next, unknown>, input: unknown) {
  return serveActor({ name: "twice", logic, input }, port);
}

Deno.test("remoteActor() relays the host's sends in order, with backpressure", async () => {
  const [proxySide, hostSide] = memoryPorts();
  const served = hostOn(hostSide, twice as never, { seen: 0 });
  const graph = new GraphBuilder({
    capacity: 1,
    placement: { twice: remoteActor("twice", { connect: () => Promise.resolve(proxySide) }) },
  }).actor("twice", twice, { seen: 0 }).sink("out", { capacity: 1 }).build();
  await graph.start();
  // Mailboxes of one: the senders wait until the reader below makes room (as in-process).
  const sending = Promise.all([1, 2, 3].map((step) => graph.send("twice", { type: "Next", step })));
  const out = graph.sink<Next>("out");
  const got: number[] = [];
  for (let i = 0; i < 6; i++) got.push((await out.receive()).step);
  await sending;
  assert.deepEqual(got, [10, 100, 20, 200, 30, 300]);
  await graph.stop();
  await graph.done;
  await served;
});

Deno.test("serveActor() rejects a bad message with the schema's error, before handling it", async () => {
  const [proxySide, hostSide] = memoryPorts();
  let handled = 0;
  const counting: ActorLogic<void, Next> = {
    init() {},
    handle() {
      handled++;
    },
  };
  const served = serveActor({ name: "counting", logic: counting, input: undefined }, hostSide);
  const graph = new GraphBuilder({
    placement: {
      counting: remoteActor("counting", { connect: () => Promise.resolve(proxySide) }),
    },
  }).actor("counting", counting, undefined).build();
  await graph.start();
  await graph.send("counting", { type: "Next", step: 0 }); // step must be >= 1
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "counting");
  assert.match(error.message, /Cannot accept message "Next" from the coordinator: .*step/s);
  assert.equal(handled, 0);
  await served;
});

Deno.test("remoteActor() rejects a bad message the host sends, and it is never delivered", async () => {
  const [proxySide, hostSide] = memoryPorts();
  const bad: ActorLogic<void, Next> = {
    init() {},
    async handle(_s, _m, ctx) {
      await ctx.send("out", { type: "Rollouts", step: 1 }); // most fields missing
    },
  };
  const served = serveActor({ name: "bad", logic: bad, input: undefined }, hostSide);
  const graph = new GraphBuilder({
    placement: { bad: remoteActor("bad", { connect: () => Promise.resolve(proxySide) }) },
  }).actor("bad", bad, undefined).sink("out").build();
  await graph.start();
  await graph.send("bad", { type: "Next", step: 1 });
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.match(
    error.message,
    /Actor "bad" failed while handling "Next": Cannot accept message "Rollouts" from actor "bad"/,
  );
  const out = graph.sink("out");
  await assert.rejects(out.receive()); // closed and empty: nothing half-delivered
  await served;
});

/** Two port pairs: the first host dies after its first send of step 2. */
Deno.test("a lost host is reported with the actor's name; with a restart nothing is lost or sent twice", async () => {
  const lost: string[] = [];
  let connects = 0;
  let first: { kill(): void } | undefined;
  const connect = () => {
    connects++;
    const [proxySide, hostSide] = memoryPorts();
    const logic: ActorLogic<{ handled: number }, Next, { seen: number }> = {
      ...twice,
      async handle(state, message, ctx) {
        await ctx.send("out", { type: "Next", step: message.step * 10 });
        if (connects === 1 && message.step === 2) {
          first!.kill();
          await new Promise(() => {}); // the process is gone: nothing more happens here
        }
        await ctx.send("out", { type: "Next", step: message.step * 100 });
        return { handled: state.handled + 1 };
      },
    };
    void serveActor({ name: "twice", logic, input: { seen: 0 } }, hostSide);
    if (connects === 1) first = { kill: () => void hostSide.close() };
    return Promise.resolve(proxySide);
  };
  const graph = new GraphBuilder({
    maxRestarts: { twice: 1 },
    placement: {
      twice: remoteActor("twice", {
        connect,
        onLost: (actor, cause) => lost.push(`${actor}: ${cause.message}`),
      }),
    },
  }).actor("twice", twice, { seen: 0 }).sink("out").build();
  await graph.start();
  const out = graph.sink<Next>("out");
  const got: number[] = [];
  for (const step of [1, 2, 3]) {
    await graph.send("twice", { type: "Next", step });
    for (let i = 0; i < 2; i++) got.push((await out.receive()).step);
  }
  // Step 2's first send went through before the loss: the redelivery does not repeat it.
  assert.deepEqual(got, [10, 100, 20, 200, 30, 300]);
  assert.equal(connects, 2);
  assert.equal(lost.length, 1);
  assert.match(lost[0]!, /^twice: /);
  assert.equal(graph.stats().twice?.restarts, 1);
  await graph.stop();
  await graph.done;
});

Deno.test("a lost host without restarts fails the graph naming the actor", async () => {
  const [proxySide, hostSide] = memoryPorts();
  const served = serveActor({ name: "twice", logic: twice as never, input: { seen: 0 } }, hostSide);
  const graph = new GraphBuilder({
    placement: { twice: remoteActor("twice", { connect: () => Promise.resolve(proxySide) }) },
  }).actor("twice", twice, { seen: 0 }).sink("out").build();
  await graph.start();
  await hostSide.close(); // the host goes away while the actor is idle
  const error = await graph.done.catch((e) => e);
  assert.ok(error instanceof ActorFailedError);
  assert.equal(error.actor, "twice");
  assert.match(error.message, /Actor "twice" failed/);
  await served;
});

Deno.test("transferList() moves whole Weights buffers and copies views", () => {
  const whole = new Float32Array([1, 2]);
  const backing = new Float32Array(4);
  const view = backing.subarray(1, 3);
  const frame = {
    k: "handle" as const,
    id: 1,
    message: { type: "Weights", version: 1, tensors: { a: whole, b: view, c: whole } },
  };
  assert.deepEqual(transferList(frame), [whole.buffer]);
  assert.deepEqual(transferList({ k: "handle", id: 2, message: { type: "Next", step: 1 } }), []);
});
