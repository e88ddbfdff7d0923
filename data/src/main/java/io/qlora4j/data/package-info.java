/** Training data as LLaMA-Factory prepares it: dataset_info.json, alpaca/sharegpt/OpenAI records, chat templates, token ids with -100 label masks, and batches. */
package io.qlora4j.data;
