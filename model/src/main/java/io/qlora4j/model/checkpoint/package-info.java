/** Whole-checkpoint jobs that stream a Hugging Face model directory tensor by tensor into a new one: 4-bit quantization now, merged exports later. */
package io.qlora4j.model.checkpoint;
