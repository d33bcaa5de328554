/**
 * The actors (PromptSource, Sampler, Verifier, RefPolicy, Learner), their messages and the
 * runtime that wires them into graphs.
 *
 * @module
 */
export * from "./messages.ts";
export * from "./prompt_source.ts";
export * from "./sampler.ts";
export * from "./verifier.ts";
export * from "./ref_policy.ts";
export * from "./learner.ts";
export * from "./runtime/mod.ts";
export * from "./openai_sampler.ts";
