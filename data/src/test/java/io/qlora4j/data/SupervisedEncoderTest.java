package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

class SupervisedEncoderTest extends TokenizerTestBase {

    // default template, turn 1: prompt 7 ids, response 3 ids; turn 2 prompt 9 ids, response 3 ids
    static final int[] P1 = ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":");
    static final int[] R1 = ids("fine", "</s>", "\n");
    static final int[] P2 = ids("Human", ":", "how", "are", "you", "</s>", "\n", "Assistant", ":");
    static final int[] R2 = ids("ok", "</s>", "\n");
    static final Conversation TWO_TURNS = chat(null, "hi", "fine", "how are you", "ok");

    Example encode(int cutoff, boolean trainOnPrompt, boolean maskHistory, Conversation c) throws Exception {
        ChatTemplate template = ChatTemplate.named("default");
        return new SupervisedEncoder(template, template.bind(tokenizer), cutoff, trainOnPrompt, maskHistory, false).encode(c);
    }

    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    static int[] ignored(int n) {
        int[] out = new int[n];
        Arrays.fill(out, -100);
        return out;
    }

    @Test
    void promptLabelsAreIgnoredAndEveryResponseIsTrained() throws Exception {
        Example e = encode(100, false, false, TWO_TURNS);
        assertArrayEquals(concat(P1, R1, P2, R2), e.inputIds());
        assertArrayEquals(concat(ignored(7), R1, ignored(9), R2), e.labels());
        assertArrayEquals(new int[] {22}, e.segmentLengths());
    }

    @Test
    void trainOnPromptLabelsEveryToken() throws Exception {
        Example e = encode(100, true, false, TWO_TURNS);
        assertArrayEquals(e.inputIds(), e.labels());
    }

    @Test
    void maskHistoryTrainsOnlyTheLastResponse() throws Exception {
        Example e = encode(100, false, true, TWO_TURNS);
        assertArrayEquals(concat(P1, R1, P2, R2), e.inputIds());
        assertArrayEquals(concat(ignored(7), ignored(3), ignored(9), R2), e.labels());
    }

    @Test
    void inferSeqLenKeepsTheProportionAsLlamaFactory() {
        // target*2 >= cutoff and source*2 >= cutoff: target = int(8 * 5 / 15) = 2, source = 6
        assertArrayEquals(new int[] {6, 2}, SupervisedEncoder.inferSeqLen(10, 5, 8));
        // short source (3*2 < 8): target gets the rest, 5
        assertArrayEquals(new int[] {3, 5}, SupervisedEncoder.inferSeqLen(3, 10, 8));
        // short target (2*2 < 8): whole target, source cut to 6
        assertArrayEquals(new int[] {6, 2}, SupervisedEncoder.inferSeqLen(10, 2, 8));
        assertArrayEquals(new int[] {4, 3}, SupervisedEncoder.inferSeqLen(4, 3, 8));
    }

    @Test
    void cutoffTruncatesTheLaterTurnFirst() throws Exception {
        // 10 tokens used by turn 1; 2 left for (9, 3): int(2 * 3 / 12) = 0 target, 2 source tokens
        Example e = encode(12, false, false, TWO_TURNS);
        assertArrayEquals(concat(P1, R1, Arrays.copyOf(P2, 2)), e.inputIds());
        assertArrayEquals(concat(ignored(7), R1, ignored(2)), e.labels());
        // cutoff 8 inside turn 1 (7, 3): 3*2 < 8 keeps the response, prompt cut to 5; turn 2 dropped
        Example first = encode(8, false, false, TWO_TURNS);
        assertArrayEquals(concat(Arrays.copyOf(P1, 5), R1), first.inputIds());
        assertArrayEquals(concat(ignored(5), R1), first.labels());
    }

    @Test
    void maskHistoryGivesTheLastTurnPriorityUnderCutoff() throws Exception {
        // last turn (9, 3) fits in 13, 1 token left for turn 1 (7, 3): target int(1*3/10) = 0, source 1
        Example e = encode(13, false, true, TWO_TURNS);
        assertArrayEquals(concat(Arrays.copyOf(P1, 1), P2, R2), e.inputIds());
        assertArrayEquals(concat(ignored(1), ignored(9), R2), e.labels());
    }
}
