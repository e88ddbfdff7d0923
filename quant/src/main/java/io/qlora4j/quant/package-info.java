/** Number formats for frozen base weights: 4-bit NormalFloat and FP4 codebooks, blockwise quantization with bitsandbytes semantics, double quantization of the scales, and packed tensors. */
package io.qlora4j.quant;
