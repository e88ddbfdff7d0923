package io.qlora4j.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Plain text for {@code stage: pt} as LLaMA-Factory's {@code PretrainDatasetProcessor}: each
 * document is its first message's text followed by the eos token ({@code <|end_of_text|>} when the job
 * names the llama3 template), encoded without special tokens. Without packing a document is one sequence, cut at
 * {@code cutoff_len}. With packing a group of documents is concatenated and cut into full blocks of
 * {@code cutoff_len} (the rest of the group is dropped). No bos is added: the processor adds one only where
 * {@code tokenizer.add_bos_token}, which transformers 5 leaves false for every tokenizer it loads from
 * tokenizer.json (it drops tokenizer_config.json's {@code add_bos_token} and lets the post-processor add bos to
 * {@code tokenizer(text)}, which the processor calls with {@code add_special_tokens=False}). Labels are the ids,
 * except -100 on tokens equal to the pad id, as transformers' {@code DataCollatorForLanguageModeling} does
 * (with pad = eos that masks eos too).
 */
final class PretrainEncoder {

    private final TemplateTokenizer tokenizer;
    private final String eosText;
    private final int cutoffLen;

    PretrainEncoder(TemplateTokenizer boundTokenizer, ChatTemplate template, int cutoffLen) {
        this.tokenizer = boundTokenizer;
        this.eosText = "llama3".equals(template.name()) && !template.recognisedFromTokenizer() ? "<|end_of_text|>"
                : boundTokenizer.eosToken() == null ? "" : boundTokenizer.eosToken();
        this.cutoffLen = cutoffLen;
    }

    /** One document as one sequence: text, eos, truncated to cutoff_len. */
    Example encode(Conversation document) {
        int[] ids = tokenizer.encode(document.messages().get(0).content() + eosText);
        ids = Arrays.copyOf(ids, Math.min(ids.length, cutoffLen));
        return new Example(ids, labels(ids));
    }

    /** One document's ids (text + eos, untruncated), to be cut into blocks with its group. */
    Example tokens(Conversation document) {
        int[] ids = tokenizer.encode(document.messages().get(0).content() + eosText);
        return new Example(ids, ids);
    }

    /** The group's documents concatenated and cut into full blocks of cutoff_len. */
    List<Example> blocks(List<Example> documents) {
        IntList all = new IntList();
        for (Example document : documents) {
            all.addAll(document.inputIds());
        }
        int[] ids = all.toArray();
        List<Example> blocks = new ArrayList<>();
        for (int start = 0; start + cutoffLen <= ids.length; start += cutoffLen) {
            int[] block = Arrays.copyOfRange(ids, start, start + cutoffLen);
            blocks.add(new Example(block, labels(block)));
        }
        return blocks;
    }

    private int[] labels(int[] ids) {
        int pad = tokenizer.padId();
        int[] labels = ids.clone();
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] == pad) {
                labels[i] = Example.IGNORE_INDEX;
            }
        }
        return labels;
    }
}
