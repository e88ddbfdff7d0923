package io.qlora4j.trainer;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small generated alpaca datasets over {@link TinyModel}'s letters: copy or reverse a letter sequence. */
public final class TinyTasks {
    private static final List<String> LETTERS = TinyModel.VOCAB.subList(TinyModel.VOCAB.indexOf("a"),
            TinyModel.VOCAB.size());

    private TinyTasks() {}

    /** Writes {@code count} records of {@code task} ({@code copy} or {@code reverse}) over {@code length} letters. */
    public static Path write(Path file, String task, int count, int length) throws IOException {
        Random random = new Random(count * 31L + length + task.hashCode());
        List<Map<String, String>> records = new ArrayList<>();
        for (int r = 0; r < count; r++) {
            List<String> letters = new ArrayList<>();
            for (int i = 0; i < length; i++) {
                letters.add(LETTERS.get(random.nextInt(LETTERS.size())));
            }
            List<String> answer = new ArrayList<>(letters);
            if (task.equals("reverse")) {
                Collections.reverse(answer);
            }
            records.add(Map.of("instruction", task, "input", String.join(" ", letters), "output",
                    String.join(" ", answer)));
        }
        new ObjectMapper().writeValue(file.toFile(), records);
        return file;
    }
}
