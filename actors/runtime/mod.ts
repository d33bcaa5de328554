/**
 * The actor runtime: bounded channels, the actor contract and in-process
 * graphs with supervision.
 *
 * @module
 */

export * from "./channel.ts";
export * from "./actor.ts";
export * from "./graph.ts";
