package io.qlora4j.data;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;

/**
 * Turns a conversation into input ids and labels as LLaMA-Factory's
 * {@code SupervisedDatasetProcessor}: each (prompt, response) pair is truncated to what is left of
 * {@code cutoff_len} by {@link #inferSeqLen}, prompt labels are -100 unless {@code train_on_prompt},
 * every response is trained, and with {@code mask_history} the pairs are taken from the last one
 * backwards (the last turn has priority) and only the last response is trained. A template with
 * {@code efficient_eos} (gemma2) reserves one token for the eos that ends the example (trained), and every
 * prompt after the first pair taken labels its first token with eos: the eos that closed the answer before it.
 */
final class SupervisedEncoder {

    private final ChatTemplate template;
    private final TemplateTokenizer tokenizer;
    private final int cutoffLen;
    private final boolean trainOnPrompt;
    private final boolean maskHistory;
    private final boolean discardHistoryThoughts;

    /**
     * An encoder with {@code template} over its {@code boundTokenizer}; {@code discardHistoryThoughts} removes
     * the thought blocks of all but the last answer (a reasoning template with mask_history and no
     * preserve_thinking).
     */
    SupervisedEncoder(ChatTemplate template, TemplateTokenizer boundTokenizer, int cutoffLen, boolean trainOnPrompt,
            boolean maskHistory, boolean discardHistoryThoughts) {
        this.template = template;
        this.tokenizer = boundTokenizer;
        this.cutoffLen = cutoffLen;
        this.trainOnPrompt = trainOnPrompt;
        this.maskHistory = maskHistory;
        this.discardHistoryThoughts = discardHistoryThoughts;
    }

    /** Encodes one conversation (an even number of messages, ending with the assistant's). */
    Example encode(Conversation conversation) {
        List<int[][]> pairs = template.encodeMultiturn(tokenizer, conversation, discardHistoryThoughts);
        boolean efficientEos = template.efficientEos();
        Deque<int[]> ids = new ArrayDeque<>();
        Deque<int[]> labels = new ArrayDeque<>();
        int total = efficientEos ? 1 : 0;
        for (int turn = 0; turn < pairs.size(); turn++) {
            if (total >= cutoffLen) {
                break;
            }
            int[][] pair = pairs.get(maskHistory ? pairs.size() - 1 - turn : turn);
            int[] lengths = inferSeqLen(pair[0].length, pair[1].length, cutoffLen - total);
            int[] source = Arrays.copyOf(pair[0], lengths[0]);
            int[] target = Arrays.copyOf(pair[1], lengths[1]);
            total += lengths[0] + lengths[1];
            int[] sourceLabel = trainOnPrompt ? source : ignored(source.length);
            if (!trainOnPrompt && efficientEos && turn != 0 && source.length > 0) {
                sourceLabel[0] = tokenizer.eosId();
            }
            int[] targetLabel = maskHistory && turn != 0 ? ignored(target.length) : target;
            if (maskHistory) {
                ids.addFirst(target);
                ids.addFirst(source);
                labels.addFirst(targetLabel);
                labels.addFirst(sourceLabel);
            } else {
                ids.addLast(source);
                ids.addLast(target);
                labels.addLast(sourceLabel);
                labels.addLast(targetLabel);
            }
        }
        if (efficientEos) {
            int[] eos = {tokenizer.eosId()};
            ids.addLast(eos);
            labels.addLast(eos);
        }
        return new Example(concat(ids, total), concat(labels, total));
    }

    /**
     * LLaMA-Factory's {@code infer_seqlen}: the (source, target) lengths after truncating to
     * {@code cutoff}. A short target keeps all of it; else a short source keeps all of it; else both
     * are cut in proportion, the target getting {@code int(cutoff * target / (source + target))}.
     */
    static int[] inferSeqLen(int sourceLen, int targetLen, int cutoff) {
        int maxTargetLen;
        if (targetLen * 2 < cutoff) {
            maxTargetLen = cutoff;
        } else if (sourceLen * 2 < cutoff) {
            maxTargetLen = cutoff - sourceLen;
        } else {
            maxTargetLen = (int) (cutoff * ((double) targetLen / (sourceLen + targetLen)));
        }
        int newTargetLen = Math.min(maxTargetLen, targetLen);
        int maxSourceLen = Math.max(cutoff - newTargetLen, 0);
        int newSourceLen = Math.min(maxSourceLen, sourceLen);
        return new int[] {newSourceLen, newTargetLen};
    }

    private static int[] ignored(int length) {
        int[] out = new int[length];
        Arrays.fill(out, Example.IGNORE_INDEX);
        return out;
    }

    private static int[] concat(Deque<int[]> parts, int total) {
        int[] out = new int[total];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }
}
