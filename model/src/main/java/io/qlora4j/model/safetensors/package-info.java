/**
 * Safetensors checkpoints of any size: a streaming reader that maps one tensor range at a time
 * (single files, shard sets with an index, directories), a streaming sharded writer with atomic
 * renames, and the bfloat16/float16 conversions the JVM lacks.
 */
package io.qlora4j.model.safetensors;
