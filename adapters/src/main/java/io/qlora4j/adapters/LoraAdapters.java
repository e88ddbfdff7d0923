package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.TorchGenerator;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The LoRA adapters of one model: every targeted linear layer of every block wrapped in a {@link LoraLinear},
 * the trainable matrices under PEFT's names, and the adapter directory PEFT reads and writes
 * ({@code adapter_config.json} and {@code adapter_model.safetensors}).
 *
 * <p>Dropout masks depend only on the dropout seed ({@link #setDropoutSeed}), the module and the input shape:
 * a trainer gives each micro-batch its own seed (for example derived from the run seed, the step and the
 * micro-batch index) and the same seed to that micro-batch's recomputation, and a resumed run reproduces every
 * mask from the step number alone, with no generator state to save.
 */
public final class LoraAdapters implements AutoCloseable {
    /** The weights file inside an adapter directory. */
    static final String WEIGHTS_FILE = "adapter_model.safetensors";
    /** The prefix of every PEFT key: the PeftModel's {@code base_model.model} around the causal LM. */
    static final String KEY_PREFIX = "base_model.model.";

    private final LoraSettings settings;
    private final Map<String, LoraLinear> modules;
    private final InitialAdapter start;
    private final List<String> absent;

    private LoraAdapters(LoraSettings settings, Map<String, LoraLinear> modules, InitialAdapter start,
            List<String> absent) {
        this.settings = settings;
        this.modules = Collections.unmodifiableMap(modules);
        this.start = start;
        this.absent = List.copyOf(absent);
    }

    /**
     * Wraps each targeted linear layer of every block of {@code model} (never lm_head) with a fresh adapter:
     * A drawn as PEFT draws it after {@code torch.manual_seed(seed)} ({@link #peftStart}), {@code B = 0}, and the
     * variant's extra tensors as it initialises them from the base weight (DoRA: the row norms), so the model's
     * outputs are unchanged. The float32
     * tensors are created in {@code manager} and require gradients; dropout is off until {@link #setTraining}.
     *
     * @throws IllegalStateException when a targeted layer already carries an adapter
     * @throws IllegalArgumentException when the settings' init rewrites the base (use the overload with its start)
     */
    public static LoraAdapters attach(CausalLM model, LoraSettings settings, NDManager manager, long seed) {
        return attach(model, settings, manager, seed, null);
    }

    /**
     * {@link #attach(CausalLM, LoraSettings, NDManager, long)} for an init that rewrites the base (PiSSA, LoftQ):
     * {@code start} is the {@link InitialAdapter} the model was loaded with, which holds each module's starting A and
     * B; the variant's extra tensors then start from the rewritten base (DoRA: the row norms of
     * {@code W_res + s B A}, as PEFT initialises DoRA after PiSSA). The adapter saves the start's seed.
     */
    public static LoraAdapters attach(CausalLM model, LoraSettings settings, NDManager manager, long seed,
            InitialAdapter start) {
        if (settings.init().rewritesBase() != (start != null)) {
            throw new IllegalArgumentException(start == null ? settings.init().describe() + " rewrites the base: attach"
                    + " with the InitialAdapter the model was loaded through" : "a start is for an init that rewrites"
                    + " the base, not " + settings.init().describe());
        }
        List<String> names = TargetModules.linearNames(model.config(), settings.targets());
        names.forEach(name -> requireUnwrapped(model, name));
        TorchGenerator generator = start != null ? null : new TorchGenerator(seed);
        List<Planned> planned = new ArrayList<>();
        for (int layer = 0; layer < model.numLayers(); layer++) {
            Map<String, float[]> drawn = generator == null ? Map.of()
                    : peftStart(model, layer, names, settings.rank(), generator);
            for (String name : names) {
                BaseLinear base = baseOf(model, layer, name);
                long in = base.inFeatures();
                int out = Math.toIntExact(base.outFeatures());
                String path = TargetModules.modulePath(layer, name);
                float[][] ab = start != null ? start.start(path)
                        : new float[][] {drawn.get(path), new float[out * settings.rank()]};
                NDArray loraA = manager.create(ab[0], new Shape(settings.rank(), in));
                NDArray loraB = manager.create(ab[1], new Shape(out, settings.rank()));
                AdapterTensors tensors = new AdapterTensors(loraA, loraB, Map.of(), settings.scaling());
                planned.add(new Planned(layer, name, settings, loraA, loraB,
                        settings.variant().initExtras(base, tensors, manager)));
            }
        }
        LoraAdapters adapters = wrap(model, settings, planned, start, List.of());
        adapters.setDropoutSeed(seed);
        return adapters;
    }

    /**
     * The starting A of every targeted module of block {@code layer} as PEFT draws it after
     * {@code torch.manual_seed(seed)} (transformers' {@code set_seed}, which LLaMA-Factory calls before it loads the
     * model and makes the adapter), {@code generator} having drawn the blocks before: PEFT visits the modules in
     * registration order, layer by layer ({@link io.qlora4j.model.decoder.DecoderConfig#registrationOrder}), and for
     * each creates {@code lora_A = Linear(in, r)} and {@code lora_B = Linear(r, out)}, whose own initialisation draws
     * {@code r * in} and {@code out * r} values from the global generator, then redraws A with
     * {@code kaiming_uniform_(a=sqrt(5))}: {@code uniform_(-bound, bound)}, {@code bound = sqrt(3) * gain / sqrt(in)},
     * {@code gain = sqrt(2 / (1 + sqrt(5)^2))} (and zeroes B). Checked value for value against transformers 5.12.1 and
     * PEFT 0.20. One block at a time, so the host holds one block's A at once.
     *
     * @return A ({@code r x in}, row-major) by module path
     */
    private static Map<String, float[]> peftStart(CausalLM model, int layer, List<String> names, int rank,
            TorchGenerator generator) {
        Map<String, float[]> drawn = new HashMap<>();
        double slope = Math.sqrt(5);
        double gain = Math.sqrt(2.0 / (1 + slope * slope));
        for (String name : model.config().registrationOrder()) {
            if (!names.contains(name)) {
                continue;
            }
            BaseLinear base = baseOf(model, layer, name);
            long in = base.inFeatures();
            generator.skip(rank * in + base.outFeatures() * rank);
            double bound = Math.sqrt(3.0) * (gain / Math.sqrt(in));
            float[] a = new float[Math.toIntExact(rank * in)];
            for (int i = 0; i < a.length; i++) {
                a[i] = generator.uniform(-bound, bound);
            }
            drawn.put(TargetModules.modulePath(layer, name), a);
        }
        return drawn;
    }

    /**
     * Loads an adapter directory written by qlora4j or by Python PEFT onto {@code model} (whose layers must not
     * carry adapters yet), with matrices in {@code manager} that require gradients, so training can continue.
     * Accepted: missing or unknown config keys, keys with or without {@code base_model.model.} and
     * {@code .default}, F16/BF16/F32/F64 weights (widened to float32), {@code use_rslora}, {@code rank_pattern},
     * {@code alpha_pattern}, {@code fan_in_fan_out}, and the registered variants ({@code use_dora} with its
     * {@code lora_magnitude_vector}). Refused with one line naming the file and the key or
     * tensor: trained biases, {@code modules_to_save}, a target or tensor for a module the model lacks, a
     * tensor whose shape does not fit the base layer, and an adapter whose {@code init_lora_weights} rewrote its base
     * (PiSSA, LoftQ), which needs the overload with its start.
     */
    public static LoraAdapters load(Path adapterDir, CausalLM model, NDManager manager) throws ModelException {
        return load(adapterDir, model, manager, null);
    }

    /**
     * {@link #load(Path, CausalLM, NDManager)} for an adapter trained from a rewritten base: {@code start} is
     * {@code InitialAdapter.of(adapterDir, config)}, which the model was loaded through (null for an adapter whose
     * start keeps the base). Kept for saving and for {@link #saveConverted}.
     */
    public static LoraAdapters load(Path adapterDir, CausalLM model, NDManager manager, InitialAdapter start)
            throws ModelException {
        return PeftAdapterReader.read(adapterDir, model, manager, start);
    }

    /** Wraps the planned modules into the model's blocks, in order, and makes their matrices trainable. */
    static LoraAdapters wrap(CausalLM model, LoraSettings settings, List<Planned> planned, InitialAdapter start,
            List<String> absent) {
        Map<String, LoraLinear> wrapped = new LinkedHashMap<>();
        for (Planned p : planned) {
            p.a().setRequiresGradient(true);
            p.b().setRequiresGradient(true);
            p.extras().values().forEach(t -> t.setRequiresGradient(true));
            DecoderBlock block = model.block(p.layer());
            LoraLinear lora = new LoraLinear(baseOf(model, p.layer(), p.linearName()), p.a(), p.b(), p.extras(),
                    p.settings(), wrapped.size());
            block.setLinear(p.linearName(), lora);
            wrapped.put(TargetModules.modulePath(p.layer(), p.linearName()), lora);
        }
        return new LoraAdapters(settings, wrapped, start, absent);
    }

    /** Fails when any block's {@code name} layer is already a {@link LoraLinear}. */
    static void requireUnwrapped(CausalLM model, String name) {
        for (int layer = 0; layer < model.numLayers(); layer++) {
            if (model.block(layer).linear(name) instanceof LoraLinear) {
                throw new IllegalStateException(TargetModules.modulePath(layer, name)
                        + " already has a LoRA adapter; attach or load onto a model without adapters");
            }
        }
    }

    /** The base layer a block's projection holds, which an adapter wraps. */
    static BaseLinear baseOf(CausalLM model, int layer, String linearName) {
        LinearLayer layerOf = model.block(layer).linear(linearName);
        if (!(layerOf instanceof BaseLinear base)) {
            throw new IllegalStateException(TargetModules.modulePath(layer, linearName) + " is not a base layer ("
                    + layerOf.getClass().getSimpleName() + "); adapters wrap a base model's projections");
        }
        return base;
    }

    /** One module about to be wrapped: where, with which settings, and its float32 tensors. */
    record Planned(int layer, String linearName, LoraSettings settings, NDArray a, NDArray b,
            Map<String, NDArray> extras) {
        /** Frees the tensors of a module that will not be wrapped. */
        void close() {
            a.close();
            b.close();
            extras.values().forEach(NDArray::close);
        }
    }

    /**
     * The modules a loaded adapter's {@code target_modules} selects but whose tensors its file lacks (a partial save),
     * sorted; empty for a complete or fresh adapter. They stay unadapted, which gives the outputs PEFT gives (it adds
     * them with B = 0 and warns of missing keys); training on from such an adapter would differ, as PEFT trains them.
     */
    public List<String> absentModules() {
        return absent;
    }

    /** The adapter-wide settings (a module may differ in rank and alpha when loaded with patterns). */
    public LoraSettings settings() {
        return settings;
    }

    /** The wrapped layers keyed by module path ({@code model.layers.0.self_attn.q_proj}), in block order. */
    public Map<String, LoraLinear> modules() {
        return modules;
    }

    /**
     * The trainable tensors under PEFT's saved keys, ordered by layer, module, A, B, then the variant's:
     * {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} {@code [r, in]},
     * {@code ...lora_B.weight} {@code [out, r]}, and for DoRA {@code ...lora_magnitude_vector} {@code [out]}.
     */
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> params = new LinkedHashMap<>();
        modules.forEach((path, lora) -> lora.tensors().forEach((suffix, t) -> params.put(KEY_PREFIX + path + "." + suffix, t)));
        return Collections.unmodifiableMap(params);
    }

    /** Turns dropout on (training) or off (evaluation, generation, export checks). */
    public void setTraining(boolean training) {
        modules.values().forEach(m -> m.setTraining(training));
    }

    /** Sets the seed of the next forward passes' dropout masks (see the class comment for the protocol). */
    public void setDropoutSeed(long seed) {
        modules.values().forEach(m -> m.setDropoutSeed(seed));
    }

    /**
     * Writes {@code adapter_config.json} (PEFT's fields only, sorted keys, indent 2) and
     * {@code adapter_model.safetensors} (F32, metadata {@code {"format": "pt"}}) as PEFT does, and records
     * {@code baseFormat}, the format of the base's linear weights during training, in {@code qlora4j.json} (with the
     * seed of a rewriting start) and the {@code README.md} model card, into {@code adapterDir}; each file under a
     * temp name renamed into place when complete.
     */
    public void save(Path adapterDir, String baseModelNameOrPath, BaseFormat baseFormat) throws ModelException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        parameters().forEach((key, t) -> tensors.put(key, new Tensor(t.getShape().getShape(), t.toFloatArray())));
        write(adapterDir, baseModelNameOrPath, baseFormat, settings, 1, 1, tensors, start == null ? null : start.seed());
    }

    /**
     * Writes this PiSSA adapter as an adapter on the original weights, as LLaMA-Factory's {@code pissa_convert} and
     * PEFT's {@code save_pretrained(path_initial_model_for_weight_conversion=...)} do: since
     * {@code W = W_res + s B0 A0}, the trained {@code W_res + s B A} is {@code W + s B' A'} with {@code A' = [A; A0]}
     * and {@code B' = [B, -B0]} at rank 2r and alpha 2 alpha (sqrt(2) alpha with rsLoRA), the same scaling; the
     * result starts as LoRA ({@code init_lora_weights: true}) and loads onto the original base anywhere. A variant's
     * tensors are kept (DoRA's norm sees the same combined weight; PEFT's conversion drops the magnitude). Over a
     * quantized base the converted adapter on {@code Q(W)} is not the trained {@code Q(W_res) + s B A}, as PEFT warns.
     *
     * @throws ModelException when rsLoRA meets rank or alpha patterns, which PEFT refuses to convert
     * @throws IllegalStateException for an adapter that did not start as PiSSA
     */
    public void saveConverted(Path adapterDir, String baseModelNameOrPath, BaseFormat baseFormat) throws ModelException {
        if (start == null || !(start.init() instanceof PissaInit)) {
            throw new IllegalStateException("only an adapter started by PiSSA converts to a LoRA on the original"
                    + " weights, not one started by " + settings.init().describe());
        }
        boolean patterns = modules.values().stream().anyMatch(l -> l.settings().rank() != settings.rank()
                || l.settings().alpha() != settings.alpha());
        if (settings.useRslora() && patterns) {
            throw new ModelException(adapterDir + ": pissa_convert is not supported with rank_pattern or alpha_pattern"
                    + " and use_rslora at once (PEFT refuses it too)");
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLinear> e : modules.entrySet()) {
            LoraLinear lora = e.getValue();
            float[][] initial = start.start(e.getKey());
            int r = lora.settings().rank();
            int in = Math.toIntExact(lora.inFeatures());
            int out = Math.toIntExact(lora.outFeatures());
            float[] a = concat(lora.loraA().toFloatArray(), initial[0]);
            float[] b0 = initial[1];
            float[] bTrained = lora.loraB().toFloatArray();
            float[] b = new float[out * 2 * r];
            for (int o = 0; o < out; o++) {
                for (int k = 0; k < r; k++) {
                    b[o * 2 * r + k] = bTrained[o * r + k];
                    b[o * 2 * r + r + k] = -b0[o * r + k];
                }
            }
            String key = KEY_PREFIX + e.getKey() + ".";
            tensors.put(key + PeftAdapterFile.A, new Tensor(new long[] {2L * r, in}, a));
            tensors.put(key + PeftAdapterFile.B, new Tensor(new long[] {out, 2L * r}, b));
            lora.extras().forEach((suffix, t) -> tensors.put(key + suffix, new Tensor(t.getShape().getShape(),
                    t.toFloatArray())));
        }
        double alphaFactor = settings.useRslora() ? Math.sqrt(2) : 2;
        LoraSettings converted = new LoraSettings(2 * settings.rank(), alphaFactor * settings.alpha(), settings.dropout(),
                settings.useRslora(), settings.targets(), settings.variant(), AdapterInits.lora());
        write(adapterDir, baseModelNameOrPath, baseFormat, converted, 2, alphaFactor, tensors, null);
    }

    /** One tensor to write: its shape and row-major values. */
    private record Tensor(long[] shape, float[] values) {}

    /**
     * Writes the adapter files for {@code tensors} under adapter-wide {@code adapterSettings}, each module's rank and
     * alpha multiplied by the factors (a conversion's) and recorded in the patterns where they differ.
     */
    private void write(Path adapterDir, String baseModelNameOrPath, BaseFormat baseFormat, LoraSettings adapterSettings,
            int rankFactor, double alphaFactor, Map<String, Tensor> tensors, Long initSeed) throws ModelException {
        Map<String, Integer> rankPattern = new TreeMap<>();
        Map<String, Double> alphaPattern = new TreeMap<>();
        modules.forEach((path, lora) -> {
            if (lora.settings().rank() * rankFactor != adapterSettings.rank()) {
                rankPattern.put(path, lora.settings().rank() * rankFactor);
            }
            if (lora.settings().alpha() * alphaFactor != adapterSettings.alpha()) {
                alphaPattern.put(path, lora.settings().alpha() * alphaFactor);
            }
        });
        List<String> targetModules = TargetModules.shortNamesIn(modules.keySet(), modules.keySet());
        byte[] json = AdapterConfig.toJson(AdapterConfig.fields(adapterSettings, targetModules, baseModelNameOrPath,
                rankPattern,
                alphaPattern));
        SafetensorsWriter writer = SafetensorsWriter.builder(adapterDir).optBaseName("adapter_model").build();
        try {
            for (Map.Entry<String, Tensor> t : tensors.entrySet()) {
                writer.addFloats(t.getKey(), DType.F32, t.getValue().shape(), t.getValue().values());
            }
        } catch (ModelException | RuntimeException e) {
            writer.abort();
            throw e;
        }
        writer.close();
        writeAtomically(adapterDir.resolve(AdapterConfig.FILE), json);
        writeAtomically(adapterDir.resolve(BaseFormatRecord.FILE), BaseFormatRecord.json(baseFormat, initSeed));
        writeAtomically(adapterDir.resolve("README.md"), new AdapterCard(baseModelNameOrPath, baseFormat,
                adapterSettings).text().getBytes(StandardCharsets.UTF_8));
    }

    private static float[] concat(float[] first, float[] second) {
        float[] out = java.util.Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, out, first.length, second.length);
        return out;
    }

    private static void writeAtomically(Path file, byte[] bytes) throws ModelException {
        try {
            AtomicFiles.write(file, bytes);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot write: " + e.getMessage(), e);
        }
    }

    /** Frees the adapter tensors; the wrapped model is to be discarded with them. */
    @Override
    public void close() {
        modules.values().forEach(LoraLinear::closeAdapter);
    }
}
