package io.qlora4j.adapters;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.BaseRewrite;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The start of an adapter whose initialisation rewrites the base (PiSSA, LoftQ): handed to the loader
 * ({@code ModelLoader.Builder.optBaseRewrite}), it splits each targeted weight as the checkpoint streams in, one
 * projection at a time, keeps the starting A and B, and then gives them to {@link LoraAdapters#attach} (a new
 * adapter) or to {@link LoraAdapters#load} (an adapter trained from that start, which replaces A and B but needs the
 * same base). The split is deterministic: exact decompositions, and a randomised SVD seeded per module from
 * {@link #seed}, which the saved adapter records; so resuming, evaluating or merging rebuilds the trained base bit
 * for bit.
 */
public final class InitialAdapter implements BaseRewrite {
    private static final Pattern MODULE = Pattern.compile("model\\.layers\\.\\d+\\.(.+)");

    private final AdapterInit init;
    private final Function<String, LoraSettings> settingsOf;
    private final long seed;
    private final BaseFormat trainedOn;
    private final Map<String, float[][]> starts = new HashMap<>();
    private final InitReport report = new InitReport();

    private InitialAdapter(AdapterInit init, Function<String, LoraSettings> settingsOf, long seed, BaseFormat trainedOn) {
        this.init = init;
        this.settingsOf = settingsOf;
        this.seed = seed;
        this.trainedOn = trainedOn;
    }

    /**
     * The start of a new adapter with {@code settings} (whose init must rewrite the base) over a base with
     * {@code config}, its random draws derived from {@code seed}.
     */
    public static InitialAdapter fresh(LoraSettings settings, DecoderConfig config, long seed) {
        if (!settings.init().rewritesBase()) {
            throw new IllegalArgumentException(settings.init().describe() + " keeps the base; attach without a start");
        }
        List<String> names = TargetModules.linearNames(config, settings.targets());
        return new InitialAdapter(settings.init(), module -> {
            Matcher m = MODULE.matcher(module);
            return m.matches() && names.contains(m.group(1)) ? settings : null;
        }, seed, null);
    }

    /**
     * The start the adapter in {@code adapterDir} was trained from, for a base with {@code config}, or null when its
     * {@code init_lora_weights} keeps the base. Its modules, ranks and alphas come from the adapter's files, its seed
     * from {@code qlora4j.json} (0 for an adapter from PEFT, whose own randomised start cannot be repeated).
     *
     * @throws ModelException naming the file when the adapter cannot be read or does not fit the base
     */
    public static InitialAdapter of(Path adapterDir, DecoderConfig config) throws ModelException {
        try (PeftAdapterFile file = PeftAdapterFile.open(adapterDir, TargetModules.projections(config),
                config.numHiddenLayers())) {
            AdapterInit init = file.config().init();
            if (!init.rewritesBase()) {
                return null;
            }
            Map<String, LoraSettings> modules = new HashMap<>();
            file.modules().forEach((path, module) -> modules.put(path, module.settings()));
            Long seed = BaseFormatRecord.initSeed(adapterDir);
            return new InitialAdapter(init, modules::get, seed == null ? 0 : seed, file.trainedOn());
        }
    }

    /**
     * The start a base with {@code config} must be loaded through for {@code adapterDirs}: that of the adapter whose
     * start rewrote its base, or null when none did.
     *
     * @throws ModelException when such an adapter comes with others: its base is its own, as PEFT warns
     */
    public static InitialAdapter of(List<Path> adapterDirs, DecoderConfig config) throws ModelException {
        InitialAdapter found = null;
        for (Path dir : adapterDirs) {
            InitialAdapter start = of(dir, config);
            if (start != null && adapterDirs.size() > 1) {
                throw new ModelException(dir + ": " + start.init().describe() + " rewrote the base this adapter was"
                        + " trained over, so it cannot be combined with other adapters; convert it (pissa_convert) or"
                        + " use it alone");
            }
            found = start != null ? start : found;
        }
        return found;
    }

    /** How the adapter starts. */
    public AdapterInit init() {
        return init;
    }

    /** The seed its randomised parts derive from, per module. */
    public long seed() {
        return seed;
    }

    /** What the split measured so far (LoftQ's reconstruction errors). */
    public InitReport report() {
        return report;
    }

    @Override
    public boolean rewrites(String module) {
        return settingsOf.apply(module) != null;
    }

    /**
     * Splits {@code weight} as the init says, keeps A and B for the module, and returns the weight the base stores.
     *
     * @throws ModelException when the base format is not the one a recorded LoftQ start quantized in
     */
    @Override
    public float[] rewrite(String module, float[] weight, long[] shape, BaseFormat format, NDManager manager)
            throws ModelException {
        if (trainedOn != null && init instanceof LoftqInit && !trainedOn.equals(format)) {
            throw new ModelException(module + ": the adapter's LoftQ start quantized its base as "
                    + trainedOn.describe() + ", but the base is now loaded as " + format.describe()
                    + "; load it with the adapter's quantization keys (qlora4j.json)");
        }
        AdapterInit.Split split = init.split(module, weight, shape, settingsOf.apply(module), format,
                new Random(Seeds.mix(seed, module.hashCode())), manager, report);
        starts.put(module, new float[][] {split.a(), split.b()});
        return split.base();
    }

    /** The starting {@code {A, B}} of {@code module}, row-major; the loader must have rewritten it. */
    float[][] start(String module) {
        float[][] ab = starts.get(module);
        if (ab == null) {
            throw new IllegalStateException(module + " was not loaded through this start (" + init.describe() + ")");
        }
        return ab;
    }
}
