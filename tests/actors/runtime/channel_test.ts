import assert from "node:assert/strict";
import { Channel, ChannelClosedError } from "../../../actors/runtime/channel.ts";

/** Lets pending promise callbacks and a macrotask run. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Tracks whether a promise has settled, without leaving a rejection unhandled. */
function track<T>(promise: Promise<T>): { settled: boolean; result: Promise<T> } {
  const state = { settled: false, result: promise };
  promise.then(
    () => state.settled = true,
    () => state.settled = true,
  );
  return state;
}

Deno.test("Channel() rejects a capacity below 1 or not an integer", () => {
  assert.throws(() => new Channel(0), {
    name: "RangeError",
    message: "Cannot create channel: capacity must be an integer >= 1: current value is 0",
  });
  assert.throws(() => new Channel(1.5), RangeError);
  assert.equal(new Channel(3).capacity, 3);
});

Deno.test("Channel.send() waits when the mailbox is full", async () => {
  const channel = new Channel<string>(1);
  await channel.send("a");
  assert.equal(channel.size, 1);
  const second = track(channel.send("b"));
  await tick();
  assert.equal(second.settled, false);
  assert.equal(channel.size, 1);

  assert.equal(await channel.receive(), "a");
  await second.result;
  assert.equal(second.settled, true);
  assert.equal(channel.size, 1);
  assert.equal(await channel.receive(), "b");
  assert.equal(channel.size, 0);
});

Deno.test("Channel.send() keeps FIFO order across waiting senders", async () => {
  const channel = new Channel<number>(2);
  const sends = [1, 2, 3, 4, 5].map((n) => channel.send(n));
  const received: number[] = [];
  for (let i = 0; i < 5; i++) received.push(await channel.receive());
  await Promise.all(sends);
  assert.deepEqual(received, [1, 2, 3, 4, 5]);
});

Deno.test("Channel.trySend() returns false when full and drops nothing", async () => {
  const channel = new Channel<number>(2);
  assert.equal(channel.trySend(1), true);
  assert.equal(channel.trySend(2), true);
  assert.equal(channel.trySend(3), false);
  assert.equal(channel.size, 2);
  assert.equal(await channel.receive(), 1);
  assert.equal(channel.trySend(4), true);
  assert.equal(await channel.receive(), 2);
  assert.equal(await channel.receive(), 4);
  assert.equal(channel.size, 0);
});

Deno.test("Channel.trySend() hands the value to a waiting receiver", async () => {
  const channel = new Channel<string>(1);
  const receive = channel.receive();
  assert.equal(channel.trySend("x"), true);
  assert.equal(await receive, "x");
  assert.equal(channel.size, 0);
});

Deno.test("Channel.send() aborted by its signal rejects and does not deliver the value", async () => {
  const channel = new Channel<string>(1);
  await channel.send("kept");
  const controller = new AbortController();
  const pending = channel.send("cancelled", { signal: controller.signal });
  const reason = new Error("no longer needed");
  controller.abort(reason);
  await assert.rejects(pending, (error) => error === reason);

  assert.equal(await channel.receive(), "kept");
  assert.equal(channel.size, 0);
  await channel.send("next");
  assert.equal(await channel.receive(), "next");

  const aborted = AbortSignal.abort("already");
  await assert.rejects(channel.send("late", { signal: aborted }), (error) => error === "already");
  assert.equal(channel.size, 0);
});

Deno.test("Channel.receive() aborted by its signal rejects and leaves later values", async () => {
  const channel = new Channel<number>(1);
  const controller = new AbortController();
  const pending = channel.receive({ signal: controller.signal });
  controller.abort("stop waiting");
  await assert.rejects(pending, (error) => error === "stop waiting");
  await channel.send(9);
  assert.equal(channel.size, 1);
  assert.equal(await channel.receive(), 9);
});

Deno.test("Channel.close() rejects pending and later sends with the undelivered value", async () => {
  const channel = new Channel<number>(1);
  await channel.send(1);
  const pending = channel.send(2);
  const reason = new Error("actor failed");
  channel.close(reason);
  assert.equal(channel.closed, true);
  assert.equal(channel.reason, reason);

  const error = await pending.catch((e) => e);
  assert.ok(error instanceof ChannelClosedError);
  assert.equal(error.value, 2);
  assert.equal(error.reason, reason);
  assert.equal(error.message, 'Cannot send value: channel is closed: reason is "actor failed"');

  const later = await channel.send(3).catch((e) => e);
  assert.ok(later instanceof ChannelClosedError);
  assert.equal(later.value, 3);
  assert.equal(later.reason, reason);
  assert.throws(() => channel.trySend(4), ChannelClosedError);
});

Deno.test("Channel.close() lets buffered values drain, then receive() rejects", async () => {
  const channel = new Channel<string>(3);
  await channel.send("a");
  await channel.send("b");
  channel.close("done");
  assert.equal(await channel.receive(), "a");
  assert.equal(await channel.receive(), "b");
  const error = await channel.receive().catch((e) => e);
  assert.ok(error instanceof ChannelClosedError);
  assert.equal(error.value, undefined);
  assert.equal(error.reason, "done");
});

Deno.test("Channel.close() rejects waiting receivers", async () => {
  const channel = new Channel<string>(1);
  const first = channel.receive();
  const second = channel.receive();
  channel.close("bye");
  for (const pending of [first, second]) {
    const error = await pending.catch((e) => e);
    assert.ok(error instanceof ChannelClosedError);
    assert.equal(error.reason, "bye");
  }
});

Deno.test("Channel.close() with discard returns the buffered values", async () => {
  const channel = new Channel<number>(2);
  await channel.send(1);
  await channel.send(2);
  assert.deepEqual(channel.close("stop", { discard: true }), [1, 2]);
  assert.equal(channel.size, 0);
  await assert.rejects(channel.receive(), ChannelClosedError);
  assert.deepEqual(channel.close("again"), []);
  assert.equal(channel.reason, "stop");
});

Deno.test("Channel[Symbol.asyncIterator]() ends when the channel is closed and drained", async () => {
  const channel = new Channel<number>(1);
  const producer = (async () => {
    for (let n = 1; n <= 4; n++) await channel.send(n);
    channel.close();
  })();
  const received: number[] = [];
  for await (const n of channel) received.push(n);
  await producer;
  assert.deepEqual(received, [1, 2, 3, 4]);
});
