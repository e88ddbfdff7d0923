package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Objects;

/**
 * How a base format family joins the {@link BaseFormats} registry: the job keys that choose it, how to build it
 * from them, and how to recognise a checkpoint's {@code quantization_config} as its own.
 *
 * @param name what users call the family in messages ({@code bitsandbytes 4-bit}, {@code HQQ})
 * @param methods the {@code quantization_method} spellings that choose it, canonical first ({@code bnb},
 *     {@code bitsandbytes}); empty for a format that is only ever read from pre-quantized checkpoints
 * @param bits the {@code quantization_bit} values it implements for those methods
 * @param options the extra job keys it reads (each key declared by one registration only)
 * @param fromKeys builds the format from the job keys (method and bits already matched)
 * @param fromConfig the format a checkpoint's {@code quantization_config} describes, or null when the config is
 *     not this family's
 * @param checkpointRefusal null when qlora4j writes and reads this family's checkpoints (every family so far but one);
 *     otherwise the one-line reason it does neither (EETQ: its saved layout is specific to the GPU architecture that
 *     wrote it), with which {@code quantize} and {@code export} refuse the format before any work, and which keeps
 *     the family out of the list of loadable pre-quantized formats. Such a family still quantizes on the fly for
 *     {@code train}, {@code eval} and {@code generate}.
 */
public record FormatRegistration(String name, List<String> methods, List<Integer> bits, List<FormatOption> options,
        FromKeys fromKeys, FromConfig fromConfig, String checkpointRefusal) {

    /** Builds a format from the job keys. */
    @FunctionalInterface
    public interface FromKeys {
        /**
         * The format {@code keys} choose.
         *
         * @throws IllegalArgumentException naming the option whose value the format cannot take
         */
        BaseFormat create(FormatKeys keys);
    }

    /** Recognises a checkpoint's {@code quantization_config}. */
    @FunctionalInterface
    public interface FromConfig {
        /**
         * The format {@code quantizationConfig} describes, or null when it describes another family's.
         *
         * @throws IllegalArgumentException naming the field whose value this family cannot read
         */
        BaseFormat recognise(JsonNode quantizationConfig);
    }

    /** A family whose checkpoints qlora4j writes and reads. */
    public FormatRegistration(String name, List<String> methods, List<Integer> bits, List<FormatOption> options,
            FromKeys fromKeys, FromConfig fromConfig) {
        this(name, methods, bits, options, fromKeys, fromConfig, null);
    }

    /** Copies the lists. */
    public FormatRegistration {
        Objects.requireNonNull(name, "name");
        methods = List.copyOf(methods);
        bits = List.copyOf(bits);
        options = List.copyOf(options);
        Objects.requireNonNull(fromKeys, "fromKeys");
        Objects.requireNonNull(fromConfig, "fromConfig");
    }

    /** Whether {@code method} (case-insensitive) and {@code bits} choose this family. */
    boolean chosenBy(String method, int bits) {
        return this.bits.contains(bits) && methods.stream().anyMatch(m -> m.equalsIgnoreCase(method));
    }
}
