package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.FloatSource;
import java.util.List;
import java.util.Map;

/**
 * A storage format for a base model's linear weights {@code [out, in]} (the {@code nn.Linear} layout): dense
 * float, bitsandbytes NF4/FP4, LLM.int8, ... One object is one fully configured format (NF4 with double
 * quantization at blocksize 64 is one object, FP4 without it another) and owns everything that differs between
 * formats, so the loader, {@code quantize}, {@code export}, the adapter record and {@code inspect} never ask which
 * format they hold:
 * <ul>
 *   <li>recognising and reading the entries a pre-quantized checkpoint stores a linear under ({@link #isStored},
 *       {@link #storedKeys}, {@link #read});</li>
 *   <li>quantizing a float weight streamed from a checkpoint ({@link #quantize}, {@link #load});</li>
 *   <li>the result, a {@link StoredWeight}: dequantized on the host, written as Hugging Face state-dict entries,
 *       uploaded as a {@link BaseLinear} that dequantizes on the compute device (forward, input gradient, and
 *       {@link BaseLinear#withWeight} for merges and adapter variants);</li>
 *   <li>config.json's {@code quantization_config} ({@link #quantizationConfig}), the job keys that choose the format
 *       ({@link #keys}) and its size ({@link #storedBytes}) for {@code inspect} and memory planning.</li>
 * </ul>
 *
 * <p>A linear is addressed by its module path, the {@code prefix} ({@code model.layers.0.self_attn.q_proj}): a
 * format decides which entries it stores under it ({@code prefix.weight} and {@code prefix.weight.absmax} for
 * bitsandbytes 4-bit, {@code prefix.qweight} and {@code prefix.scales} for GPTQ, ...). The bias
 * ({@code prefix.bias}) is not part of the format: callers read, copy and add it as a plain tensor.
 *
 * <p>Implementations are immutable and safe to share between threads. Problems with a checkpoint are
 * {@link ModelException}s whose one-line message names the file, the tensor and what was expected. A new format is
 * one class implementing this interface plus one line in {@link BaseFormats} (see there).
 */
public interface BaseFormat {

    /**
     * The {@code quantization_method} value that chooses this format, in its canonical spelling ({@code bnb},
     * {@code hqq}, ...); {@code none} for dense weights.
     */
    String method();

    /** The {@code quantization_bit} value that chooses this format; 32 for dense (float32 on the device). */
    int bits();

    /** One line for logs, model cards and {@code inspect}, e.g. {@code bitsandbytes NF4+DQ, blocksize 64}. */
    String describe();

    /**
     * The job keys that choose exactly this format again through {@link BaseFormats#fromKeys}, in the order a user
     * would write them: {@code quantization_method} and {@code quantization_bit} first, then this format's own
     * options with their values; empty for dense. The adapter record stores them.
     */
    Map<String, Object> keys();

    /**
     * Whether {@code reader} holds the linear at {@code prefix} in this format (its entries exist): how the loader
     * and the export tell a pre-quantized module from one stored in float (a checkpoint may keep some modules
     * dense). Reads the header only. Dense answers false: it stores nothing a float checkpoint lacks.
     */
    boolean isStored(SafetensorsReader reader, String prefix);

    /**
     * Every entry name the stored linear at {@code prefix} occupies in {@code reader} (its weight and all side
     * entries, the bias excluded), so a job copying a checkpoint tensor by tensor can skip them. Only called when
     * {@link #isStored} is true, and for dense with {@code prefix.weight}.
     */
    List<String> storedKeys(SafetensorsReader reader, String prefix) throws ModelException;

    /**
     * Reads the stored linear at {@code prefix} as it is (no re-quantization). Its parameters come from the entries
     * themselves where they record them (bitsandbytes' quant state says NF4 or FP4), so one object of a family
     * reads every variant of it. Shapes and dtypes are checked against each other; the caller checks the logical
     * shape against the model's config.
     *
     * @throws ModelException naming the file, the tensor and what was expected
     */
    StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException;

    /**
     * Quantizes the float32 values of a row-major weight of {@code shape} read through {@code source} (a
     * checkpoint tensor via {@link SafetensorsReader#floatSource}, or an array). A format should read in chunks
     * rather than copy the whole weight when its algorithm allows. A format qlora4j can read but not produce
     * (pre-quantized only) throws a {@link ModelException} naming itself.
     */
    StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException;

    /**
     * Whether {@link #quantize} makes this format from a float weight alone. False for a format qlora4j only reads
     * from pre-quantized checkpoints (GPTQ, AWQ) or that learns from calibration data (AQLM, made by its own
     * {@code quantize} pipeline): such a format is not on the {@link BaseFormats#menu()} of formats a job can
     * quantize to.
     */
    default boolean quantizesOnTheFly() {
        return true;
    }

    /**
     * Whether a checkpoint in this format may store a bias on projections whose family's config declares none
     * (CVXQ's bias correction on every projection): the loader then reads a {@code prefix.bias} present in the file
     * whatever config.json says, where it otherwise refuses it.
     */
    default boolean keepsBiases() {
        return false;
    }

    /**
     * The linear at {@code prefix} of a float checkpoint, converted to this format and uploaded to
     * {@code manager}'s device with {@code bias} (or null): what the loader calls for every module the checkpoint
     * does not store pre-quantized. The default quantizes straight from the file; dense overrides it to copy the
     * weight in row chunks.
     */
    default BaseLinear load(SafetensorsReader reader, String prefix, NDArray bias, NDManager manager)
            throws ModelException {
        String weight = prefix + ".weight";
        return quantize(reader.floatSource(weight), reader.info(weight).shape()).upload(bias, manager);
    }

    /**
     * The {@code quantization_config} object of config.json, exactly as transformers writes it for this format, for
     * a model whose unquantized weights and compute are {@code torchDtype} ({@code bfloat16}, {@code float16} or
     * {@code float32}); null for dense.
     */
    ObjectNode quantizationConfig(String torchDtype);

    /** Bytes a weight of {@code shape} takes in this format, every per-element scale included (per-tensor constants not). */
    long storedBytes(long[] shape);

    /**
     * Bytes a weight of {@code shape} holds on the compute device once uploaded (its {@code DeviceWeight.bytes()}):
     * what memory planning counts for a base projection. The stored bytes unless the device form differs (codes
     * widened for DJL's ops, lookup tables, indices kept wider than in the file).
     */
    default long deviceBytes(long[] shape) {
        return storedBytes(shape);
    }

    /** {@code 8 * storedBytes / elements}: 4.127 for NF4 with double quantization at blocksize 64. */
    default double bitsPerParameter(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return 8.0 * storedBytes(shape) / n;
    }
}
