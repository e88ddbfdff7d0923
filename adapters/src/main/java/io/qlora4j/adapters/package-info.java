/** LoRA adapters that wrap frozen linear layers, target-module selection, and PEFT adapter files. */
package io.qlora4j.adapters;
