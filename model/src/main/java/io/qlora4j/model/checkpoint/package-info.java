/** Whole-checkpoint jobs that stream a Hugging Face model directory tensor by tensor into a new one (quantization into a base format), and the files besides the weights. */
package io.qlora4j.model.checkpoint;
