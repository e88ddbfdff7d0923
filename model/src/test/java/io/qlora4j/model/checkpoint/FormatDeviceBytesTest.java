package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link BaseFormat#deviceBytes}, what memory planning counts for a base projection, equals the bytes the loaded
 * projection holds on the device, for every format on the menu and for the pre-quantized formats' fixtures.
 */
class FormatDeviceBytesTest {
    @TempDir
    Path dir;

    static Stream<BaseFormat> menu() {
        return BaseFormats.menu().stream();
    }

    private static void deviceBytesAreWhatTheLoadedLinearsHold(Path model, BaseFormat format, ModelLoader loader)
            throws Exception {
        try (NDManager m = NDManager.newBaseManager(); CausalLM loaded = loader.load(model, m)) {
            for (int layer = 0; layer < loaded.config().numHiddenLayers(); layer++) {
                for (String name : loaded.config().linearNames()) {
                    var linear = loaded.block(layer).linear(name);
                    assertEquals(linear.bytes(), format.deviceBytes(new long[] {linear.outFeatures(), linear.inFeatures()}), format.describe() + " " + name);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("menu")
    void everyMenuFormatPlansTheBytesItsQuantizedLinearsHold(BaseFormat format) throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        deviceBytesAreWhatTheLoadedLinearsHold(model, format, ModelLoader.builder().optFormat(format).build());
    }

    @org.junit.jupiter.api.Test
    void preQuantizedFormatsPlanTheBytesTheirLoadedLinearsHold() throws Exception {
        for (PrequantizedModels.Written w : new PrequantizedModels.Written[] {
            PrequantizedModels.aqlm(dir.resolve("aqlm"), 1, 16, 8),
            PrequantizedModels.aqlm(dir.resolve("aqlm2"), 2, 8, 8),
            PrequantizedModels.gptq(dir.resolve("gptq"), 4, 32, true, false, true),
            PrequantizedModels.gptq(dir.resolve("gptq3"), 3, 32, true, false, false),
            PrequantizedModels.awq(dir.resolve("awq"), 32)}) {
            deviceBytesAreWhatTheLoadedLinearsHold(w.dir(), BaseFormats.stored(w.dir()), ModelLoader.builder().build());
        }
    }
}
