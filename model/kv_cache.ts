/**
 * The key/value cache of KV-cache sampling: each layer's keys and values of the tokens seen so
 * far, to which each forward appends its own.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Per-layer key/value cache, each `[B, H_kv, S, headDim]`. */
export interface KvCache {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** Tokens already in a cache (`S`), 0 without one. */
export function cachedLength(past: readonly KvCache[] | undefined): number {
  return past?.[0]?.k.shape[2] ?? 0;
}

/**
 * A layer's keys and values for this forward: this step's, `[B, T, H_kv, headDim]` each,
 * appended to the layer's cache `past` when there is one. Returns `[B, H_kv, S, headDim]` each.
 */
export function appendToCache(
  past: KvCache | undefined,
  step: { k: tf.Tensor4D; v: tf.Tensor4D },
): KvCache {
  let k = tf.transpose(step.k, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, hd]
  let v = tf.transpose(step.v, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, hd]
  if (past) {
    k = tf.concat([past.k, k], 2); // [B, Hkv, S, hd]
    v = tf.concat([past.v, v], 2);
  }
  return { k, v };
}
