/**
 * Training data as LLaMA-Factory prepares it, so a job moved from Python trains on identical
 * tokens: datasets ({@code dataset_info.json}, alpaca and sharegpt records, JSON/JSONL streamed),
 * chat templates, token ids with -100 label masks and {@code cutoff_len} truncation, and
 * deterministic, resumable micro-batches. Entry points: {@link io.qlora4j.data.TemplateTokenizer},
 * {@link io.qlora4j.data.DataSettings}, {@link io.qlora4j.data.DataPipeline}.
 */
package io.qlora4j.data;
