/**
 * bitsandbytes' LLM.int8 weights: per-output-row symmetric int8 codes over the float16 weight with the row absmax
 * ({@code SCB}), quantized byte for byte as bitsandbytes does ({@link io.qlora4j.quant.int8.LlmInt8Quantizer}), held
 * on the host ({@link io.qlora4j.quant.int8.LlmInt8Tensor}) and dequantized on the device
 * ({@link io.qlora4j.quant.int8.NdLlmInt8Tensor}).
 */
package io.qlora4j.quant.int8;
