package io.qlora4j.data;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

/** A temporary folder with the Llama-like {@link TinyTokenizer} in {@code dir/model}, opened for each test. */
abstract class TokenizerTestBase {

    @TempDir
    Path dir;

    TemplateTokenizer tokenizer;

    @BeforeEach
    void openTokenizer() throws Exception {
        tokenizer = TemplateTokenizer.open(TinyTokenizer.writeLlamaLike(dir.resolve("model")));
    }

    @AfterEach
    void closeTokenizer() {
        tokenizer.close();
    }

    /** Loads a pipeline over files in {@code dir}, given the settings builder with its datasets set. */
    DataPipeline load(DataSettings.Builder builder) throws DataException {
        return DataPipeline.load(builder.optDatasetDir(dir).build(), tokenizer);
    }

    /** Settings for these datasets with the {@code default} template (the tests' expected ids are written in it). */
    static DataSettings.Builder settings(String... datasets) {
        return DataSettings.builder().setDatasets(List.of(datasets)).optTemplate("default");
    }

    /** A conversation of alternating user and assistant turns. */
    static Conversation chat(String system, String... turns) {
        List<Message> messages = new java.util.ArrayList<>();
        for (int i = 0; i < turns.length; i++) {
            messages.add(new Message(i % 2 == 0 ? Role.USER : Role.ASSISTANT, turns[i]));
        }
        return new Conversation(messages, system, null);
    }
}
