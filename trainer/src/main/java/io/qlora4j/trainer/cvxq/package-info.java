/**
 * CVXQ quantization of a whole model: calibration on token sequences (principal directions of the final hidden state,
 * per-projection gradient and input statistics through DJL autograd, regrouping, dual ascent, bias correction), the
 * final allocation to a size target, and the CVXQ checkpoint; the numerics are in {@code io.qlora4j.quant.cvxq}.
 */
package io.qlora4j.trainer.cvxq;
