package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The plain state store: every state tensor stays resident, in float32, on the parameters' device,
 * in a manager this store owns. Loaded state waits on the host until its parameter's first step,
 * which checks it against the parameter's shape and moves it to the device.
 */
final class DeviceStateStore implements StateStore {

    static final String STEP_KEY = "step";

    private Map<String, Slot> slots = new LinkedHashMap<>();
    private NDManager manager;

    /** One parameter's state: its step count, resident tensors, and loaded ones not yet placed. */
    private static final class Slot {
        int step;
        final Map<StateKind, NDArray> resident = new EnumMap<>(StateKind.class);
        final Map<StateKind, StateTensor> pending = new EnumMap<>(StateKind.class);
    }

    @Override
    public NDArray acquire(String param, StateKind kind, NDArray like) {
        Slot slot = slots.computeIfAbsent(param, k -> new Slot());
        NDArray state = slot.resident.get(kind);
        if (state == null) {
            state = materialize(param + "." + kind.key(), slot.pending.remove(kind), like);
            slot.resident.put(kind, state);
        }
        return state;
    }

    @Override
    public void release(String param, StateKind kind, NDArray working) {
        // resident state was updated in place: nothing to write back
    }

    @Override
    public int nextStep(String param) {
        return ++slots.computeIfAbsent(param, k -> new Slot()).step;
    }

    @Override
    public Map<String, StateTensor> export() {
        Map<String, StateTensor> out = new LinkedHashMap<>();
        slots.forEach(
                (param, slot) -> {
                    out.put(
                            param + "." + STEP_KEY,
                            new StateTensor(new Shape(), new float[] {slot.step}));
                    for (StateKind kind : StateKind.values()) {
                        NDArray resident = slot.resident.get(kind);
                        StateTensor tensor =
                                resident != null
                                        ? new StateTensor(
                                                resident.getShape(), resident.toFloatArray())
                                        : slot.pending.get(kind);
                        if (tensor != null) {
                            out.put(param + "." + kind.key(), tensor);
                        }
                    }
                });
        return out;
    }

    @Override
    public void load(Map<String, StateTensor> state) {
        Map<String, Slot> loaded = new LinkedHashMap<>();
        Map<String, Boolean> hasStep = new LinkedHashMap<>();
        for (Map.Entry<String, StateTensor> entry : state.entrySet()) {
            String key = entry.getKey();
            StateTensor tensor = entry.getValue();
            if (key.endsWith("." + STEP_KEY) && key.length() > STEP_KEY.length() + 1) {
                String param = key.substring(0, key.length() - STEP_KEY.length() - 1);
                loaded.computeIfAbsent(param, k -> new Slot()).step = stepCount(key, tensor);
                hasStep.put(param, true);
                continue;
            }
            StateKind kind = kindOf(key);
            String param = key.substring(0, key.length() - kind.key().length() - 1);
            loaded.computeIfAbsent(param, k -> new Slot()).pending.put(kind, tensor);
        }
        loaded.forEach(
                (param, slot) -> {
                    if (!hasStep.containsKey(param)) {
                        throw missing(param + "." + STEP_KEY);
                    }
                    for (StateKind kind : StateKind.values()) {
                        if (!slot.pending.containsKey(kind)) {
                            throw missing(param + "." + kind.key());
                        }
                    }
                });
        close();
        slots = loaded;
    }

    @Override
    public void close() {
        if (manager != null) {
            manager.close();
            manager = null;
        }
        slots = new LinkedHashMap<>();
    }

    private NDArray materialize(String key, StateTensor saved, NDArray like) {
        NDManager owner = managerFor(key, like);
        NDArray state;
        if (saved == null) {
            state = owner.zeros(like.getShape(), DataType.FLOAT32);
        } else if (!saved.shape().equals(like.getShape())) {
            throw new IllegalArgumentException(
                    "optimizer state '" + key + "' has shape " + saved.shape()
                            + " but its parameter has shape " + like.getShape());
        } else {
            state = owner.create(saved.values(), saved.shape());
        }
        // state outlives the step: keep it out of any NDScope the caller has open
        NDScope.unregister(state);
        return state;
    }

    private NDManager managerFor(String key, NDArray like) {
        if (manager == null) {
            manager = like.getManager().getEngine().newBaseManager(like.getDevice());
        } else if (!manager.getDevice().equals(like.getDevice())) {
            throw new IllegalArgumentException(
                    "optimizer state '" + key + "' is for a parameter on " + like.getDevice()
                            + " but the optimizer state lives on " + manager.getDevice());
        }
        return manager;
    }

    private static StateKind kindOf(String key) {
        for (StateKind kind : StateKind.values()) {
            String suffix = "." + kind.key();
            if (key.endsWith(suffix) && key.length() > suffix.length()) {
                return kind;
            }
        }
        throw new IllegalArgumentException(
                "optimizer state key '" + key
                        + "' is none of <param>.step, <param>.exp_avg, <param>.exp_avg_sq");
    }

    private static int stepCount(String key, StateTensor tensor) {
        float value = tensor.values().length == 1 ? tensor.values()[0] : Float.NaN;
        if (!(value >= 0 && value == Math.rint(value))) {
            throw new IllegalArgumentException(
                    "optimizer state '" + key + "' must be one non-negative whole number, got "
                            + tensor.values().length + " values starting "
                            + (tensor.values().length > 0 ? tensor.values()[0] : "nothing"));
        }
        return (int) value;
    }

    private static IllegalArgumentException missing(String key) {
        return new IllegalArgumentException("optimizer state lacks '" + key + "'");
    }
}
