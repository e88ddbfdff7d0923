package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.io.BufferedWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

class StreamingTest extends TokenizerTestBase {

    static final String[] WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "hi", "bye"};

    /** Record i: instruction = WORDS[i % 10], output = i / 10 + 1 words. */
    Path writeSmall(int n) throws Exception {
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < n; i++) {
            lines.append("{\"instruction\": \"").append(WORDS[i % 10]).append("\", \"output\": \"")
                    .append("ok ".repeat(i / 10 + 1).trim()).append("\"}\n");
        }
        Path file = dir.resolve("small.jsonl");
        Files.writeString(file, lines);
        return file;
    }

    DataPipeline load(Path file, DataSettings.Builder builder) throws DataException {
        return DataPipeline.load(builder.setDatasets(List.of(file.toString())).build(), tokenizer);
    }

    static List<int[]> epochIds(BatchIterator batches, int count) throws DataException {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Batch b = batches.next();
            for (int r = 0; r < b.rows(); r++) {
                int length = 0;
                while (length < b.columns() && b.attentionMask()[r * b.columns() + length] != 0) {
                    length++;
                }
                int[] ids = new int[length];
                for (int c = 0; c < length; c++) {
                    ids[c] = (int) b.inputIds()[r * b.columns() + c];
                }
                out.add(ids);
            }
        }
        return out;
    }

    @Test
    void streamedEpochsFollowTheShuffleBufferOverTheFileOrder() throws Exception {
        Path file = writeSmall(25);
        List<Example> fileOrder = load(file, DataSettings.builder()).train();
        DataPipeline streamed = load(file, DataSettings.builder().optStreaming(true).optBufferSize(4)
                .optValSize(3));
        assertEquals(3, streamed.eval().size());
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(fileOrder.get(i).inputIds(), streamed.eval().get(i).inputIds());
        }
        try (BatchIterator batches = streamed.batches(DataPosition.START)) {
            assertEquals(-1, batches.batchesPerEpoch());
            for (int epoch = 0; epoch < 2; epoch++) {
                // the documented buffer shuffle, replayed on the file order minus the 3 held out
                Random random = new Random(42 + epoch);
                List<Example> buffer = new ArrayList<>();
                List<Example> expected = new ArrayList<>();
                for (Example e : fileOrder.subList(3, 25)) {
                    if (buffer.size() < 4) {
                        buffer.add(e);
                    } else {
                        int i = random.nextInt(4);
                        expected.add(buffer.get(i));
                        buffer.set(i, e);
                    }
                }
                List<Integer> rest = new ArrayList<>(List.of(0, 1, 2, 3));
                java.util.Collections.shuffle(rest, random);
                rest.forEach(i -> expected.add(buffer.get(i)));
                List<int[]> seen = epochIds(batches, 22);
                for (int i = 0; i < 22; i++) {
                    assertArrayEquals(expected.get(i).inputIds(), seen.get(i), "epoch " + epoch + " example " + i);
                }
                assertEquals(new DataPosition(epoch + 1, 0), batches.position());
            }
        }
    }

    @Test
    void streamedResumeContinuesWithTheExactNextBatch() throws Exception {
        Path file = writeSmall(25);
        DataPipeline streamed = load(file, DataSettings.builder().optStreaming(true).optBufferSize(5)
                .optBatchSize(3));
        List<int[]> straight;
        DataPosition saved;
        try (BatchIterator batches = streamed.batches(DataPosition.START)) {
            epochIds(batches, 10);
            saved = batches.position();
            straight = epochIds(batches, 4);
        }
        assertEquals(new DataPosition(1, 1), saved);
        try (BatchIterator resumed = streamed.batches(saved)) {
            List<int[]> again = epochIds(resumed, 4);
            for (int i = 0; i < straight.size(); i++) {
                assertArrayEquals(straight.get(i), again.get(i));
            }
        }
    }

    @Test
    void largeJsonlStreamsThroughASmallHeap() throws Exception {
        // ~23 MB of JSONL, 1,000-token outputs: holding the ids and labels would take twice the child's 16 MB heap
        Path file = dir.resolve("large.jsonl");
        Random random = new Random(3);
        try (BufferedWriter out = Files.newBufferedWriter(file)) {
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < 5_000; i++) {
                text.setLength(0);
                for (int w = 0; w < 1000; w++) {
                    text.append(WORDS[random.nextInt(WORDS.length)]).append(' ');
                }
                out.write("{\"instruction\": \"hi there\", \"input\": \"\", \"output\": \"" + text + "\"}\n");
            }
        }
        long fileMb = Files.size(file) >> 20;
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx16m", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                StreamingProbe.class.getName(), dir.resolve("model").toString(), file.toString(), "4")
                .redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes());
        assertEquals(0, child.waitFor(), output);
        Matcher m = Pattern.compile("first_batch_ms=(\\d+) records=(\\d+) tokens=(\\d+) .*").matcher(output.trim());
        assertTrue(m.find(), output);
        long tokens = Long.parseLong(m.group(3));
        System.out.println("streaming " + fileMb + " MB JSONL with -Xmx16m: " + m.group());
        assertEquals(5_000, Long.parseLong(m.group(2)));
        // the heap bound is what proves streaming; the first batch's latency is printed as a figure, not asserted
        assertTrue(tokens * 8 > 2 * (16L << 20), "ids + labels of " + tokens + " tokens should exceed the heap");
    }
}
