/**
 * Gradient checkpointing (TRL's `gradient_checkpointing`): a layer whose forward keeps only
 * its input and whose backward runs it again under a tape of its own.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * `layer(x, consts)` under gradient checkpointing: the forward keeps only the layer's input
 * (and copies of `consts`, the tensors it reads besides its input and weights); the backward
 * runs the layer again under a tape of its own and returns the gradients of the input and of
 * `params`, the layer's trainable parameters. Activation memory drops from every layer's
 * intermediates to one `[B·T, D]` input per layer, for one more forward per step.
 */
export function checkpointed<C extends tf.Tensor[]>(
  layer: (x: tf.Tensor2D, consts: C) => tf.Tensor2D,
  x: tf.Tensor2D,
  options: { consts: C; params: tf.Variable[] },
): tf.Tensor2D {
  const { consts, params: vars } = options;
  const f = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((...args: any[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const input = args[0] as tf.Tensor2D;
      // The forward's own tensors (RoPE rows, mask) are freed when it returns: keep copies.
      save([input, ...consts]);
      return {
        value: layer(input, consts), // not taped: customGrad's forward runs as one kernel
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          // The outer backward has closed its tape; a nested one replaces the engine's
          // record of it, which the outer backward reads when it ends: put it back.
          // deno-lint-ignore no-explicit-any
          const state = (tf.engine() as any).state as { activeTape: unknown };
          const outer = state.activeTape;
          const x0 = tf.variable(saved[0]!, true);
          try {
            const { value, grads } = tf.variableGrads(
              () =>
                tf.sum(
                  tf.mul(layer(x0 as unknown as tf.Tensor2D, saved.slice(1) as C), dy),
                ) as tf.Scalar,
              [x0, ...vars],
            );
            value.dispose();
            return [x0, ...vars].map((v) => grads[v.name] ?? tf.zerosLike(v));
          } finally {
            x0.dispose();
            state.activeTape = outer;
          }
        },
      };
    }) as never,
  ) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor2D;
  return f(x, ...vars);
}
