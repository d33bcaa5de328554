/**
 * The actor runtime: bounded channels, the actor contract, in-process
 * graphs with supervision and fault injection for testing it.
 *
 * @module
 */

export * from "./channel.ts";
export * from "./actor.ts";
export * from "./graph.ts";
export * from "./faults.ts";
export * from "./remote.ts";
