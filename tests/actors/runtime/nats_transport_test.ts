/**
 * The NATS transport against a real nats-server (`deno task test:all` starts one and sets NATS_URL; else
 * the test starts `nats-server` from PATH; with CI=true a missing server fails the tests):
 * the frame codec, a remote actor attached through the server, weights through the object
 * store, and rollouts through JetStream when durable.
 */
import assert from "node:assert/strict";
import {
  type ActorLogic,
  GraphBuilder,
  remoteActor,
  serveActor,
} from "../../../actors/runtime/mod.ts";
import {
  closeNatsConnections,
  decodeFrame,
  encodeFrame,
  natsConnect,
  natsHostPort,
} from "../../../actors/runtime/nats_transport.ts";
import { natsServer } from "../../helpers.ts";

const CI = Deno.env.get("CI") === "true";
const server = await natsServer().catch(() => undefined);
if (server === undefined && CI) {
  throw new Error("Cannot test the NATS transport: no NATS_URL and no nats-server on PATH (CI)");
}
const ignore = server === undefined;

Deno.test("encodeFrame() round-trips typed arrays and every number exactly", () => {
  const value = {
    k: "handle",
    message: {
      type: "Rollouts",
      x: [0.1, -0, NaN, Infinity, -Infinity, 1e-310, 2 ** 53],
      w: new Float32Array([Math.PI, -1]),
      u: new Uint8Array([1, 2, 3]),
      s: "ünïcode",
      nested: [{ a: null, b: true }],
    },
  };
  const back = decodeFrame(encodeFrame(value)) as typeof value;
  assert.deepEqual(back, value);
  assert.ok(Object.is(back.message.x[1], -0));
  assert.ok(back.message.w instanceof Float32Array);
  assert.throws(() => decodeFrame(new Uint8Array([1])), SyntaxError);
});

type Msg = { type: string; version?: number; tensors?: Record<string, Float32Array> };

/** Echoes what it gets to `out`: Weights as their version and tensor sums. */
const echo: ActorLogic<void, Msg> = {
  init() {},
  async handle(_s, message, ctx) {
    if (message.type === "Weights") {
      const sums = Object.values(message.tensors ?? {}).map((t) => t.reduce((a, b) => a + b, 0));
      await ctx.send("out", { type: "Next", step: (message.version ?? 0) + 1 + sums[0]! });
    } else {
      await ctx.send("out", message);
    }
  },
};

/**
 * The `echo` actor served in this process through nats-server alone (its "process"), and a
 * graph whose `echo` is a proxy to it, feeding the sink `out`.
 */
async function echoOverNats(options: { url: string; session: string; durable?: boolean }) {
  const hostPort = await natsHostPort("echo", options);
  const served = serveActor({ name: "echo", logic: echo, input: undefined }, hostPort);
  const graph = new GraphBuilder({
    placement: {
      echo: remoteActor("echo", {
        connect: natsConnect("echo", {
          ...options,
          spawn: () => {
            throw new Error("the host is already running");
          },
        }),
      }),
    },
  }).actor("echo", echo, undefined).sink("out").build();
  return { graph, served };
}

Deno.test({
  name: "natsConnect() reaches an actor process through nats-server, weights in the object store",
  ignore,
  async fn() {
    const session = `t${crypto.randomUUID().slice(0, 8)}`;
    const options = { url: server!.url, session };
    // The "process" of the actor: here in this process, connected only through the server.
    const { graph, served } = await echoOverNats(options);
    await graph.start();
    const out = graph.sink<{ type: string; step: number }>("out");
    await graph.send("echo", { type: "Next", step: 7 });
    assert.deepEqual(await out.receive(), { type: "Next", step: 7 });
    // 300 000 floats, over the 1 MB message limit: through the object store, in chunks.
    const big = new Float32Array(300_000).fill(0.5);
    await graph.send("echo", { type: "Weights", version: 4, tensors: { w: big } });
    assert.deepEqual(await out.receive(), { type: "Next", step: 4 + 1 + 150_000 });
    // Any message over NATS's 1 MB limit goes through the object store too.
    const files = { "value.safetensors": new Uint8Array(2_000_000).fill(3) };
    const checkpoint = {
      type: "Checkpoint",
      step: 1,
      path: "x",
      actors: { c: { state: {}, files } },
    };
    await graph.send("echo", checkpoint);
    assert.deepEqual(await out.receive(), checkpoint);
    await graph.stop();
    await graph.done;
    await served;
  },
});

Deno.test({
  name: "natsConnect() with durable carries rollouts through JetStream",
  ignore,
  async fn() {
    const session = `t${crypto.randomUUID().slice(0, 8)}`;
    const options = { url: server!.url, session, durable: true };
    const { graph, served } = await echoOverNats(options);
    await graph.start();
    const rollouts = {
      type: "Rollouts",
      purpose: "train",
      step: 1,
      label: "",
      queries: [{ id: "q", question: "1+1", answer: 2, prompt: "p", promptIds: [1, 2] }],
      n: 1,
      policyVersion: 0,
      rollouts: [{
        queryIndex: 0,
        completionIds: [3],
        logprobs: [-0.25],
        text: "2",
        finishReason: "stop",
      }],
      timings: { sampler: 0.5 },
    };
    await graph.send("echo", rollouts);
    assert.deepEqual(await graph.sink("out").receive(), rollouts);
    await graph.stop();
    await graph.done;
    await served;
  },
});

Deno.test({
  name: "natsConnect() reports a host process that exits",
  ignore,
  async fn() {
    const session = `t${crypto.randomUUID().slice(0, 8)}`;
    const lost: string[] = [];
    let child: Deno.ChildProcess | undefined;
    const graph = new GraphBuilder({
      placement: {
        echo: remoteActor("echo", {
          connect: natsConnect("echo", {
            url: server!.url,
            session,
            startTimeoutMs: 2000,
            spawn: () => (child = new Deno.Command(Deno.execPath(), {
              args: ["eval", "await new Promise((r) => setTimeout(r, 100))"],
              stdout: "null",
              stderr: "null",
            }).spawn()),
          }),
          onLost: (actor, cause) => lost.push(`${actor}: ${cause.message}`),
        }),
      },
    }).actor("echo", echo, undefined).build();
    // The spawned process never answers and exits: init fails naming the actor.
    const error = await graph.start().catch((e) => e);
    assert.match(String(error), /actor "echo"/);
    await child?.status;
    await graph.done.catch(() => {});
  },
});

// The shared server goes once every test of this file has run (a hook, not a test).
Deno.test.afterAll(async () => {
  await closeNatsConnections();
  await server?.stop();
});
