package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a PEFT LoRA adapter directory onto a model of any family. Everything is checked (config, tensor names, dtypes,
 * shapes against the base layers) before any array is created, so a refused adapter leaves the model as it was.
 */
final class PeftAdapterReader {
    private PeftAdapterReader() {}

    /** A module of the model that LoRA may wrap. */
    private record Slot(int layer, String linearName) {}

    /** Reads {@code dir} onto {@code model}, which a base-rewriting adapter needs loaded through {@code start}. */
    static LoraAdapters read(Path dir, CausalLM model, NDManager manager, InitialAdapter start)
            throws ModelException {
        Map<String, Slot> slots = new LinkedHashMap<>();
        Map<String, long[]> projections = new LinkedHashMap<>();
        for (int layer = 0; layer < model.numLayers(); layer++) {
            for (String name : model.block(layer).linearNames()) {
                LinearLayer base = model.block(layer).linear(name);
                slots.put(TargetModules.modulePath(layer, name), new Slot(layer, name));
                projections.put(TargetModules.modulePath(layer, name), new long[] {base.inFeatures(), base.outFeatures()});
            }
        }
        try (PeftAdapterFile file = PeftAdapterFile.open(dir, projections, model.numLayers())) {
            AdapterInit init = file.config().init();
            if (init.rewritesBase() && (start == null || !start.init().equals(init))) {
                throw new ModelException(dir + ": init_lora_weights '" + init.peftValue() + "' (" + init.describe()
                        + ") rewrote the base this adapter was trained over; load the base through its"
                        + " InitialAdapter (qlora4j's commands do)");
            }
            file.modules().keySet().stream().map(path -> slots.get(path).linearName()).distinct()
                    .forEach(name -> LoraAdapters.requireUnwrapped(model, name));
            List<LoraAdapters.Planned> planned = new ArrayList<>();
            try {
                for (Map.Entry<String, PeftAdapterFile.Module> e : file.modules().entrySet()) {
                    Slot slot = slots.get(e.getKey());
                    PeftAdapterFile.Module m = e.getValue();
                    Map<String, NDArray> extras = new LinkedHashMap<>();
                    for (Map.Entry<String, TensorInfo> x : m.extras().entrySet()) {
                        extras.put(x.getKey(), array(file, manager, x.getValue()));
                    }
                    planned.add(new LoraAdapters.Planned(slot.layer(), slot.linearName(), m.settings(),
                            array(file, manager, m.a()), array(file, manager, m.b()), extras));
                }
            } catch (ModelException | RuntimeException e) {
                planned.forEach(LoraAdapters.Planned::close);
                throw e;
            }
            return LoraAdapters.wrap(model, file.settings(), planned, init.rewritesBase() ? start : null,
                    file.absentModules());
        }
    }

    private static NDArray array(PeftAdapterFile file, NDManager manager, TensorInfo t) throws ModelException {
        return manager.create(file.floats(t), new Shape(t.shape()));
    }
}
