/** Checkpoint I/O, Hugging Face configurations, the Llama family on DJL NDArrays, and the linear layers a block multiplies through (base layers in their storage format, which LoRA wraps), and the one hook adapters have on loading: {@link io.qlora4j.model.BaseRewrite}, which PiSSA and LoftQ use to rewrite base weights as they stream in. */
package io.qlora4j.model;
