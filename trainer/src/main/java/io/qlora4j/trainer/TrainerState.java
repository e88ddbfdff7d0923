package io.qlora4j.trainer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.qlora4j.data.DataPosition;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.JsonErrors;
import io.qlora4j.trainer.config.ConfigException;
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
 * @param trainBatchSize the run's micro-batch size, which its data position counts in (transformers'
 *     {@code train_batch_size}); null in checkpoints written before qlora4j recorded it
 */
@JsonIgnoreProperties(ignoreUnknown = true)
record TrainerState(
        @JsonProperty(value = "global_step", required = true) int globalStep,
        @JsonProperty(value = "epoch", required = true) double epoch,
        @JsonProperty(value = "max_steps", required = true) int maxSteps,
        @JsonProperty(value = "seed", required = true) long seed,
        @JsonProperty(value = "data_position", required = true) Position dataPosition,
        @JsonProperty(value = "log_history", required = true) List<LogEntry> logHistory,
        @JsonProperty("unlogged_loss") double unloggedLoss,
        @JsonProperty("unlogged_steps") int unloggedSteps,
        @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("loss_scale") Float lossScale,
        @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("loss_scale_good_steps") Integer lossScaleGoodSteps,
        @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("train_batch_size") Integer trainBatchSize) {

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
    record Position(@JsonProperty(value = "epoch", required = true) int epoch,
            @JsonProperty(value = "batch", required = true) int batch, @JsonProperty("seed") long seed) {

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

    /**
     * Reads and checks {@code dir/trainer_state.json}.
     *
     * @throws ConfigException naming the file and what is wrong with it (not JSON, a field missing or out of range)
     */
    static TrainerState read(Path dir) throws ConfigException {
        Path file = dir.resolve(FILE);
        TrainerState state;
        try {
            state = JSON.readValue(file.toFile(), TrainerState.class);
        } catch (JacksonException e) {
            throw new ConfigException(file + ": not a trainer state" + JsonErrors.where(e) + ": "
                    + JsonErrors.reason(e));
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage());
        }
        if (state == null) {
            throw new ConfigException(file + ": not a trainer state: expected a JSON object");
        }
        state.check(file);
        return state;
    }

    /** The ranges every field must be in for a run to continue from it. */
    private void check(Path file) throws ConfigException {
        String bad = globalStep < 0 ? "global_step is " + globalStep + "; expected 0 or more"
                : maxSteps < 1 ? "max_steps is " + maxSteps + "; expected 1 or more"
                : !(epoch >= 0) || Double.isInfinite(epoch) ? "epoch is " + epoch + "; expected a number >= 0"
                : dataPosition == null ? "data_position is null; expected {epoch, batch, seed}"
                : dataPosition.epoch() < 0 || dataPosition.batch() < 0 ? "data_position " + dataPosition.epoch()
                        + "/" + dataPosition.batch() + " is negative; expected epoch and batch 0 or more"
                : logHistory == null ? "log_history is null; expected a list"
                : unloggedSteps < 0 ? "unlogged_steps is " + unloggedSteps + "; expected 0 or more"
                : !Double.isFinite(unloggedLoss) ? "unlogged_loss is " + unloggedLoss + "; expected a finite number"
                : lossScale != null && !(lossScale > 0 && Float.isFinite(lossScale))
                        ? "loss_scale is " + lossScale + "; expected a finite number above 0"
                : trainBatchSize != null && trainBatchSize < 1 ? "train_batch_size is " + trainBatchSize
                        + "; expected 1 or more" : null;
        if (bad != null) {
            throw new ConfigException(file + ": " + bad);
        }
    }
}
