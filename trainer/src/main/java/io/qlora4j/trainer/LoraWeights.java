package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.AdapterInit;
import io.qlora4j.adapters.AdapterInits;
import io.qlora4j.adapters.AdapterVariants;
import io.qlora4j.adapters.InitialAdapter;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.optim.Parameter;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import io.qlora4j.model.decoder.DecoderConfig;

/**
 * LoRA adapters on a frozen base in any base format: new ones from the job's {@code lora_*} and variant keys
 * ({@code use_dora}), or those of {@code adapter_name_or_path} or of the checkpoint being resumed. With
 * {@code loraplus_lr_ratio} the parameters form LLaMA-Factory's LoRA+ groups. PiSSA and LoftQ starts
 * ({@code pissa_init}, {@code loftq_init}) rewrite the base as it loads ({@link #start}). Saved as a PEFT adapter that records
 * the base format it was trained over (in qlora4j's side file and the model card).
 */
final class LoraWeights implements TrainableWeights {
    /** Where {@code pissa_convert} writes the converted adapter, inside each saved directory. */
    static final String CONVERTED = "pissa_converted";

    private final LoraAdapters adapters;
    private final String baseModel;
    private final BaseFormat baseFormat;
    private final boolean pissaConvert;
    private final List<Parameter> parameters = new ArrayList<>();

    private LoraWeights(LoraAdapters adapters, String baseModel, BaseFormat baseFormat, Double loraPlusRatio,
            boolean pissaConvert) {
        this.adapters = adapters;
        this.baseModel = baseModel;
        this.baseFormat = baseFormat;
        this.pissaConvert = pissaConvert;
        adapters.parameters().forEach((name, value) -> parameters.add(new Parameter(name, value,
                loraPlusRatio != null && loraPlusGroupB(name, value) ? loraPlusRatio : 1)));
    }

    /**
     * Whether LLaMA-Factory's LoRA+ optimizer groups put the parameter in the "lora_b" group, which trains at
     * {@code loraplus_lr_ratio} times the learning rate: B matrices and every one-dimensional tensor (DoRA's
     * magnitude). Every adapter tensor takes weight decay (none is a bias or a norm), so no "nodecay" group arises.
     */
    private static boolean loraPlusGroupB(String name, NDArray value) {
        return name.contains("lora_B") || value.getShape().dimension() == 1;
    }

    /**
     * The start the base must be loaded through, or null when it loads as it is: that of the adapter being resumed
     * or continued ({@code checkpoint}, else {@code adapter_name_or_path}) when its start rewrote its base, else a new
     * PiSSA or LoftQ start from the job's keys ({@code pissa_init}, {@code loftq_init}).
     */
    static InitialAdapter start(JobConfig config, Path baseDir, Path checkpoint) throws ConfigException, ModelException {
        Path from = source(config, checkpoint);
        DecoderConfig base = ModelFamilies.read(baseDir.resolve("config.json"));
        if (from != null) {
            return InitialAdapter.of(from, base);
        }
        LoraSettings settings = settings(config);
        return settings.init().rewritesBase() ? InitialAdapter.fresh(settings, base, config.integer("seed")) : null;
    }

    /**
     * Adapters for {@code model} in {@code manager}: loaded from {@code checkpoint} when resuming, else from
     * {@code adapter_name_or_path} when set, else attached fresh with the job's settings, seeded by {@code seed};
     * {@code start} is what {@link #start} gave and the model was loaded through.
     */
    static LoraWeights create(JobConfig config, CausalLM model, NDManager manager, Path checkpoint,
            InitialAdapter start) throws ConfigException, ModelException {
        Path from = source(config, checkpoint);
        LoraSettings settings = settings(config);
        LoraAdapters adapters = from != null ? LoraAdapters.load(from, model, manager, start)
                : LoraAdapters.attach(model, settings, manager, config.integer("seed"), start);
        if (adapters.settings().variant() != settings.variant()) {
            String flag = settings.variant().peftFlag() != null ? settings.variant().peftFlag()
                    : adapters.settings().variant().peftFlag();
            adapters.close();
            throw new ConfigException(flag + ": the job trains " + settings.variant() + " but the adapter in " + from
                    + " is " + adapters.settings().variant() + "; set " + flag + " to match it");
        }
        if (from != null && !adapters.absentModules().isEmpty()) {
            adapters.close();
            throw new ConfigException("adapter_name_or_path: " + from + " holds no tensors for "
                    + adapters.absentModules().size() + " of the modules its target_modules selects, such as '"
                    + adapters.absentModules().get(0) + "'; PEFT would train them on from a fresh start, which qlora4j"
                    + " does not: save the adapter whole (eval, generate and export load it as PEFT does)");
        }
        if (from != null) {
            try {
                requireSame(config, adapters.settings(), from);
            } catch (ConfigException e) {
                adapters.close();
                throw e;
            }
        }
        if (config.bool("pissa_convert") && !adapters.settings().init().peftValue().toString().startsWith("pissa")) {
            adapters.close();
            throw new ConfigException("pissa_convert: the adapter " + (from == null ? "" : "in " + from + " ")
                    + "starts as " + adapters.settings().init().describe() + ", not PiSSA; set pissa_init: true");
        }
        String baseModel = config.string("model_name_or_path");
        return new LoraWeights(adapters, baseModel, BaseFormats.forModel(Path.of(baseModel), JobModels.format(config)),
                config.number("loraplus_lr_ratio"), config.bool("pissa_convert"));
    }

    /** The adapter directory the run starts from: the checkpoint, else {@code adapter_name_or_path}, else null. */
    private static Path source(JobConfig config, Path checkpoint) throws ConfigException {
        String existing = config.string("adapter_name_or_path");
        if (existing != null && existing.contains(",")) {
            throw new ConfigException("adapter_name_or_path: training continues one adapter, got '" + existing + "'");
        }
        return checkpoint != null ? checkpoint : existing == null ? null : Path.of(existing);
    }

    /**
     * Refuses a job that sets a LoRA hyper-parameter other than the adapter it continues was trained with: the loaded
     * adapter's settings are the ones that train, and a job saying otherwise must not look as if it had its way.
     */
    private static void requireSame(JobConfig config, LoraSettings loaded, Path from) throws ConfigException {
        Map<String, Object> trained = new LinkedHashMap<>();
        trained.put("lora_rank", loaded.rank());
        trained.put("lora_alpha", loaded.alpha());
        trained.put("lora_dropout", loaded.dropout());
        trained.put("use_rslora", loaded.useRslora());
        for (Map.Entry<String, Object> e : trained.entrySet()) {
            Object job = config.explicitValues().get(e.getKey()); // parsed to the key's type, as the settings are
            if (job != null && !job.equals(e.getValue())) {
                throw new ConfigException(e.getKey() + ": " + from + " was trained with " + e.getValue() + ", the job says "
                        + job + "; training continues that adapter, so leave " + e.getKey() + " unset or give its value");
            }
        }
    }

    /** The adapter settings the job's keys choose (memory planning reads the same). */
    static LoraSettings settings(JobConfig config) throws ConfigException {
        int rank = config.integer("lora_rank");
        Double alpha = config.number("lora_alpha");
        try {
            return new LoraSettings(rank, alpha == null ? 2.0 * rank : alpha, config.number("lora_dropout"),
                    config.bool("use_rslora"), List.of(config.string("lora_target").split("\\s*,\\s*")),
                    AdapterVariants.fromFlags(config::bool), init(config));
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
    }

    /**
     * The start the job's keys choose: PiSSA ({@code pissa_init}, {@code pissa_iter}), LoftQ ({@code loftq_init},
     * {@code loftq_iter}, {@code loftq_bits}, by default the base's bits), or LoRA's.
     */
    private static AdapterInit init(JobConfig config) throws ConfigException {
        if (config.bool("pissa_init") && config.bool("loftq_init")) {
            throw new ConfigException("pissa_init and loftq_init both choose how the adapter starts (PEFT's"
                    + " init_lora_weights); set one of them");
        }
        if (config.bool("pissa_init")) {
            return AdapterInits.pissa(config.integer("pissa_iter"));
        }
        if (config.bool("loftq_init")) {
            Integer base = config.integer("quantization_bit");
            Integer bits = config.integer("loftq_bits");
            if (bits != null && base != null && !bits.equals(base)) {
                throw new ConfigException("loftq_bits: " + bits + " differs from quantization_bit " + base
                        + "; LoftQ quantizes in the base's own format, so leave loftq_bits unset or equal");
            }
            return AdapterInits.loftq(bits != null ? bits : base != null ? base : 4, config.integer("loftq_iter"));
        }
        return AdapterInits.lora();
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }

    @Override
    public boolean trainsEmbeddings() {
        return false;
    }

    @Override
    public void setTraining(boolean training) {
        adapters.setTraining(training);
    }

    @Override
    public void setDropoutSeed(long seed) {
        adapters.setDropoutSeed(seed);
    }

    /**
     * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} as PEFT does, and the base format record;
     * with {@code pissa_convert}, also the adapter converted to a LoRA on the original weights in
     * {@value #CONVERTED} (LLaMA-Factory's directory name).
     */
    @Override
    public void save(Path dir) throws ModelException {
        adapters.save(dir, baseModel, baseFormat);
        if (pissaConvert) {
            adapters.saveConverted(dir.resolve(CONVERTED), baseModel, baseFormat);
        }
    }
}
