/** Job files: LLaMA-Factory's keys with their defaults, aliases and checks, parsed into a {@link io.qlora4j.trainer.config.JobConfig}. */
package io.qlora4j.trainer.config;
