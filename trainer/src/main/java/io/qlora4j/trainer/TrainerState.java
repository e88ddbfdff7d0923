package io.qlora4j.trainer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.qlora4j.data.DataPosition;
import io.qlora4j.model.checkpoint.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code trainer_state.json}: where a run stands after {@code globalStep} optimizer steps, enough to
 * continue it exactly: the data position (epoch, next micro-batch, the seed of the shuffled order),
 * the seed that derives every dropout mask from the step number, and the logged history.
 *
 * @param globalStep optimizer steps done
 * @param epoch epochs done, fractional (micro-batches consumed / micro-batches per epoch)
 * @param maxSteps the run's planned optimizer steps
 * @param seed the job's seed
 * @param dataPosition where the next micro-batch comes from
 * @param logHistory one entry per logged step
 * @param unloggedLoss the summed loss of the steps since the last logged one
 * @param unloggedSteps how many steps that is (a resumed run folds them into its first log entry)
 * @param lossScale float16 training's loss scale, or null (float32)
 * @param lossScaleGoodSteps the steps since the scale last changed, or null (float32)
 */
@JsonIgnoreProperties(ignoreUnknown = true)
record TrainerState(
        @JsonProperty("global_step") int globalStep,
        @JsonProperty("epoch") double epoch,
        @JsonProperty("max_steps") int maxSteps,
        @JsonProperty("seed") long seed,
        @JsonProperty("data_position") Position dataPosition,
        @JsonProperty("log_history") List<LogEntry> logHistory,
        @JsonProperty("unlogged_loss") double unloggedLoss,
        @JsonProperty("unlogged_steps") int unloggedSteps,
        @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("loss_scale") Float lossScale,
        @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("loss_scale_good_steps") Integer lossScaleGoodSteps) {

    /** The file name inside a checkpoint and at the top of output_dir. */
    static final String FILE = "trainer_state.json";

    private static final ObjectMapper LINE = new ObjectMapper();
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

    /**
     * The data position as saved.
     *
     * @param epoch the epoch of the next micro-batch (from 0)
     * @param batch the index of the next micro-batch within that epoch
     * @param seed the seed of the per-epoch shuffle ({@code seed + epoch} seeds epoch's order)
     */
    record Position(@JsonProperty("epoch") int epoch, @JsonProperty("batch") int batch,
            @JsonProperty("seed") long seed) {

        DataPosition toData() {
            return new DataPosition(epoch, batch);
        }
    }

    /**
     * One logged step, as in {@code metrics.jsonl}.
     *
     * @param step the optimizer step
     * @param epoch fractional epochs done
     * @param loss mean loss of the steps since the previous entry
     * @param lr the learning rate of the step
     * @param gradNorm the global gradient norm before clipping
     * @param tokensPerS non-padding tokens per second since the previous entry
     * @param stateDeviceBytes optimizer state bytes on the device after the step
     * @param stateHostBytes optimizer state bytes living only in host memory after the step
     * @param pagedBytesPerStep optimizer state bytes paged in plus out, per step since the previous entry
     */
    record LogEntry(
            @JsonProperty("step") int step,
            @JsonProperty("epoch") double epoch,
            @JsonProperty("loss") double loss,
            @JsonProperty("lr") double lr,
            @JsonProperty("grad_norm") double gradNorm,
            @JsonProperty("tokens_per_s") double tokensPerS,
            @JsonProperty("state_device_bytes") long stateDeviceBytes,
            @JsonProperty("state_host_bytes") long stateHostBytes,
            @JsonProperty("paged_bytes_per_step") long pagedBytesPerStep) {

        /** The entry as one line of JSON. */
        String toJsonLine() throws IOException {
            return LINE.writeValueAsString(this);
        }
    }

    /** Writes the state into {@code dir} through a temp file and a rename. */
    void write(Path dir) throws IOException {
        AtomicFiles.write(dir.resolve(FILE), JSON.writeValueAsString(this) + "\n");
    }

    /** Reads {@code dir/trainer_state.json}. */
    static TrainerState read(Path dir) throws IOException {
        return JSON.readValue(dir.resolve(FILE).toFile(), TrainerState.class);
    }
}
