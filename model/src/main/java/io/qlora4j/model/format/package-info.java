/**
 * The base-format seam: how a base model's linear weights are stored (dense, bitsandbytes 4-bit, ...), one
 * {@link io.qlora4j.model.format.BaseFormat} per format and the {@link io.qlora4j.model.format.BaseFormats} registry
 * that chooses one from job keys or a checkpoint's {@code quantization_config}.
 */
package io.qlora4j.model.format;
