/** Checkpoint I/O, Hugging Face configurations, the Llama family on DJL NDArrays and the frozen linear layers that LoRA wraps. */
package io.qlora4j.model;
