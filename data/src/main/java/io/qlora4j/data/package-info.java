/**
 * Training data as LLaMA-Factory prepares it, so a job moved from Python trains on identical
 * tokens: datasets ({@code dataset_info.json}; alpaca, sharegpt and OpenAI-style records in JSON,
 * JSONL or CSV, streamed), chat templates with tool calls, token ids with -100 label masks and
 * {@code cutoff_len} truncation, plain-text pretraining blocks, packing with per-example attention
 * segments, length grouping, and deterministic, resumable micro-batches (in memory or streamed).
 * Entry points: {@link io.qlora4j.data.TemplateTokenizer}, {@link io.qlora4j.data.DataSettings},
 * {@link io.qlora4j.data.DataPipeline}, {@link io.qlora4j.data.BatchIterator}.
 */
package io.qlora4j.data;
