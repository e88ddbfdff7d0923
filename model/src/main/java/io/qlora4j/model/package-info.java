/** Checkpoint I/O, Hugging Face configurations, the Llama family on DJL NDArrays, and the linear layers a block multiplies through (base layers in their storage format, which LoRA wraps). */
package io.qlora4j.model;
