package io.qlora4j.trainer.cli;

import io.qlora4j.data.ChatPrompt;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.generation.Generator;
import io.qlora4j.model.generation.RepetitionPenalty;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import picocli.CommandLine.Command;

/**
 * {@code qlora4j generate}: streams a model's answer to a prompt to stdout, the prompt put as LLaMA-Factory's chat puts
 * it ({@link ChatPrompt}: the user turn of the job's template, or of the tokenizer's chat template); with neither, a
 * base model continues the text as its tokenizer encodes it.
 */
@Command(name = "generate", description = {
    "Answer a prompt, printing tokens as they come. temperature=0 or do_sample=false is greedy.",
    "Keys: model_name_or_path, adapter_name_or_path, prompt, template (the prompt becomes its user turn, as",
    "LLaMA-Factory's chat does; default: the tokenizer's chat template, else the text as it is), default_system,",
    "max_new_tokens, do_sample, temperature, top_k, top_p, repetition_penalty, seed, skip_special_tokens,",
    "quantization_bit=4, device."})
final class GenerateCommand extends JobCommand {
    @Override
    boolean namesUnreadKeys() {
        return true;
    }

    @Override
    int run(JobConfig config) throws Exception {
        String prompt = config.require("prompt");
        if (!(config.number("top_p") > 0)) { // its range starts at 0, which keeps no token
            throw new ConfigException("top_p: " + config.number("top_p") + " is out of range (allowed: above 0 to 1)");
        }
        RepetitionPenalty penalty = JobModels.repetitionPenalty(config);
        PrintWriter out = out();
        try (ModelSetup setup = ModelSetup.load(config, err());
                Tokenizer tokenizer = setup.tokenizer();
                TemplateTokenizer chat = TemplateTokenizer.open(setup.modelDir)) {
            List<String> said = new ArrayList<>();
            ChatPrompt turn = ChatPrompt.of(config.string("template"), config.string("default_system"),
                    config.string("tool_format"), config.bool("enable_thinking"), chat, said::add);
            // no template named and none in the tokenizer: a base model continues the text as its tokenizer encodes
            // it (its bos included), not LLaMA-Factory's empty chat turn
            boolean plainText = config.string("template") == null && turn.templateName().equals("empty");
            if (!plainText) {
                said.forEach(err()::println);
            }
            long[] ids = plainText ? tokenizer.encode(prompt)
                    : Arrays.stream(turn.encode(prompt, null)).asLongStream().toArray();
            int positions = setup.model.config().maxPositionEmbeddings();
            long end = ids.length + (long) config.integer("max_new_tokens");
            if (end > positions) {
                // as transformers' generate reminds: the model was never trained past its context
                err().println("warning: the prompt's " + ids.length + " tokens and max_new_tokens "
                        + config.integer("max_new_tokens") + " go past the model's max_position_embeddings " + positions
                        + " (" + setup.modelDir.resolve("config.json") + "); positions past it were never pre-trained");
            }
            Set<Integer> stops = turn.stopIds();
            Tokenizer.DecodeStream stream = tokenizer.stream(ids, config.bool("skip_special_tokens"));
            Generator.builder()
                    .optMaxNewTokens(config.integer("max_new_tokens"))
                    .optTemperature(config.bool("do_sample") ? config.number("temperature") : 0)
                    .optTopP(config.number("top_p"))
                    .optTopK(config.integer("top_k"))
                    .optRepetitionPenalty(penalty)
                    .optSeed(config.integer("seed"))
                    .optStopTokenIds(stops.isEmpty() ? null : List.copyOf(stops))
                    .build()
                    .generate(setup.model, ids, id -> {
                        out.print(stream.push(id));
                        out.flush();
                    });
            out.println();
        }
        return 0;
    }
}
