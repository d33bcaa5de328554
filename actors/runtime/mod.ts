/**
 * The actor runtime: bounded channels, the actor contract, in-process
 * graphs with supervision and fault injection for testing it, and remote
 * actors (a Worker or a NATS process behind a proxy in the graph).
 *
 * @module
 */

export * from "./channel.ts";
export * from "./actor.ts";
export * from "./graph.ts";
export * from "./faults.ts";
export * from "./remote.ts";
export * from "./worker_transport.ts";
export * from "./nats_transport.ts";
