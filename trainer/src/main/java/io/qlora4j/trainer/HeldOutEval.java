package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.data.DataException;
import io.qlora4j.data.DataPipeline;
import io.qlora4j.data.DataSettings;
import io.qlora4j.data.Example;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.CachedDecoding;
import io.qlora4j.model.generation.RepetitionPenalty;
import io.qlora4j.model.generation.Sampler;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.IntUnaryOperator;

/**
 * The held-out set of a job ({@code eval_dataset}), scored on a model: the loss as transformers' {@code eval_loss}
 * averages it (each batch of {@code per_device_eval_batch_size} examples' mean over its answer tokens, averaged over
 * the examples) and, with {@code predict_with_generate}, the exact-match accuracy of greedy answers of at most
 * {@code max_new_tokens}, each ending at the template's first stop token (its eos or a stop word, where
 * LLaMA-Factory's predict stops too). A generated answer matches when its text up to the first stop token equals
 * the text of the record's answer tokens up to theirs, leading and trailing white space ignored.
 */
public final class HeldOutEval {
    private final List<Example> examples;
    private final TemplateTokenizer tokenizer;
    private final Set<Integer> stopIds;
    private final boolean generate;
    private final RepetitionPenalty penalty;
    private final int maxNewTokens;
    private final String name;
    private final int batchSize;

    private HeldOutEval(List<Example> examples, DataPipeline data, boolean generate, RepetitionPenalty penalty,
            int maxNewTokens, String name, int batchSize) {
        this.examples = examples;
        this.penalty = penalty;
        this.batchSize = batchSize;
        this.tokenizer = data.tokenizer();
        this.stopIds = data.stopIds();
        this.generate = generate;
        this.maxNewTokens = maxNewTokens;
        this.name = name;
    }

    /**
     * The job's held-out set read and encoded as its training data is ({@link JobData#evalSettings}: prompt tokens
     * unlabelled, only the last turn's answer labelled), or null when the job has no {@code eval_dataset}.
     *
     * @throws ConfigException when {@code predict_with_generate} is asked for a plain-text (stage pt) job
     * @throws DataException when the dataset cannot be read or holds no record
     */
    public static HeldOutEval load(JobConfig config, TemplateTokenizer tokenizer) throws ConfigException, DataException {
        String dataset = config.string("eval_dataset");
        if (dataset == null) {
            return null;
        }
        DataSettings.Stage stage = JobData.stage(config);
        boolean generate = config.bool("predict_with_generate");
        if (generate && stage != DataSettings.Stage.SFT) {
            throw new ConfigException("predict_with_generate: needs prompts and answers (stage: sft), not stage: "
                    + config.string("stage"));
        }
        DataPipeline data = DataPipeline.load(JobData.evalSettings(config), tokenizer);
        return new HeldOutEval(data.train(), data, generate, JobModels.repetitionPenalty(config),
                config.integer("max_new_tokens"), dataset,
                config.integer("per_device_eval_batch_size"));
    }

    /**
     * The held-out split of the training data ({@code val_size}), scored by loss only when {@link StepIntervals#eval}
     * says, or null when the job asks for no evaluation during training ({@code eval_strategy: no} and no
     * {@code eval_steps}).
     *
     * @throws ConfigException when evaluation is asked for but {@code val_size} holds nothing out
     */
    static HeldOutEval split(JobConfig config, DataPipeline data) throws ConfigException {
        String strategy = config.string("eval_strategy");
        if (strategy.equals("no") && !config.isSet("eval_steps")) {
            return null;
        }
        if (data.eval().isEmpty()) {
            throw new ConfigException((strategy.equals("no") ? "eval_steps" : "eval_strategy: " + strategy)
                    + ": needs a held-out split; set val_size (a fraction < 1 or a count)");
        }
        return new HeldOutEval(data.eval(), data, false, RepetitionPenalty.NONE, 0, "the val_size split",
                config.integer("per_device_eval_batch_size"));
    }

    /** The dataset as the job names it. */
    public String name() {
        return name;
    }

    /**
     * Scores {@code model} as it is now (no gradients are kept; the caller turns LoRA dropout off). Examples of
     * equal length (for the loss) and of equal prompt length (for generation) run together, at most
     * {@code per_device_eval_batch_size} at a time, so no row is padded.
     */
    public EvalReport run(CausalLM model) {
        double[] nll = new double[examples.size()];
        for (List<Integer> rows : groups(i -> examples.get(i).length())) {
            double[] sums = answerLosses(model, rows);
            for (int r = 0; r < rows.size(); r++) {
                nll[rows.get(r)] = sums[r];
            }
        }
        List<EvalReport.Prediction> predictions = new ArrayList<>();
        Double accuracy = null;
        if (generate) {
            EvalReport.Prediction[] byExample = new EvalReport.Prediction[examples.size()];
            for (List<Integer> rows : groups(this::promptLength)) {
                predict(model, rows, byExample);
            }
            predictions = List.of(byExample);
            accuracy = predictions.stream().filter(EvalReport.Prediction::exact).count() / (double) examples.size();
        }
        return new EvalReport(examples.size(), trainerLoss(nll), accuracy, predictions);
    }

    /**
     * transformers' {@code eval_loss} from each example's summed negative log-likelihood {@code nll}: the examples cut
     * in order into batches of {@code per_device_eval_batch_size}, each batch's mean over its labelled tokens (the
     * loss its {@code prediction_step} returns), averaged over the examples, as {@code evaluation_loop} repeats a
     * batch's loss once per example; not the mean over all tokens when batches hold different token counts. A batch
     * without a labelled token (NaN in transformers) is left out; NaN when no batch has one.
     */
    private double trainerLoss(double[] nll) {
        double sum = 0;
        int counted = 0;
        for (int from = 0; from < examples.size(); from += batchSize) {
            int to = Math.min(from + batchSize, examples.size());
            double batchNll = 0;
            long tokens = 0;
            for (int i = from; i < to; i++) {
                batchNll += nll[i];
                tokens += Arrays.stream(examples.get(i).labels()).skip(1)
                        .filter(l -> l != Example.IGNORE_INDEX).count();
            }
            if (tokens > 0) {
                sum += (to - from) * (batchNll / tokens);
                counted += to - from;
            }
        }
        return counted == 0 ? Double.NaN : sum / counted;
    }

    /** Example indices grouped by {@code key} (groups in order of first appearance), cut into batches. */
    private List<List<Integer>> groups(IntUnaryOperator key) {
        Map<Integer, List<Integer>> byKey = new LinkedHashMap<>();
        for (int i = 0; i < examples.size(); i++) {
            byKey.computeIfAbsent(key.applyAsInt(i), k -> new ArrayList<>()).add(i);
        }
        List<List<Integer>> batches = new ArrayList<>();
        for (List<Integer> group : byKey.values()) {
            for (int from = 0; from < group.size(); from += batchSize) {
                batches.add(group.subList(from, Math.min(from + batchSize, group.size())));
            }
        }
        return batches;
    }

    /** The summed negative log-likelihood of the labelled tokens of each of {@code rows} (all of one length). */
    private double[] answerLosses(CausalLM model, List<Integer> rows) {
        int length = examples.get(rows.get(0)).length();
        long[] ids = new long[rows.size() * length];
        long[] labels = new long[ids.length];
        for (int r = 0; r < rows.size(); r++) {
            Example e = examples.get(rows.get(r));
            for (int t = 0; t < length; t++) {
                ids[r * length + t] = e.inputIds()[t];
                labels[r * length + t] = e.labels()[t];
            }
        }
        try (NDManager scope = model.manager().newSubManager()) {
            Shape shape = new Shape(rows.size(), length);
            NDArray input = scope.create(ids, shape);
            NDArray hidden = model.hiddenStates(input, model.context(scope, length, 0, null), null);
            NDArray labelArray = scope.create(labels, shape);
            double[] sums = new double[rows.size()];
            for (int r = 0; r < rows.size(); r++) {
                NDIndex row = new NDIndex("{}:{}", r, r + 1);
                sums[r] = new LossHead(model, labelArray.get(row), 1, false).loss(hidden.get(row));
            }
            return sums;
        }
    }

    /** Greedy answers for {@code rows} (all of one prompt length), stored at their indices in {@code out}. */
    private void predict(CausalLM model, List<Integer> rows, EvalReport.Prediction[] out) {
        int promptLength = Math.max(promptLength(rows.get(0)), 1);
        long[] prompts = new long[rows.size() * promptLength];
        for (int r = 0; r < rows.size(); r++) {
            for (int t = 0; t < promptLength; t++) {
                prompts[r * promptLength + t] = examples.get(rows.get(r)).inputIds()[t];
            }
        }
        int[][] generated = greedy(model, prompts, rows.size());
        for (int r = 0; r < rows.size(); r++) {
            Example e = examples.get(rows.get(r));
            String expected = text(Arrays.copyOfRange(e.labels(), promptLength, e.length()));
            String answer = text(generated[r]);
            out[rows.get(r)] = new EvalReport.Prediction(tokenizer.decode(Arrays.copyOf(e.inputIds(), promptLength)),
                    expected, answer, answer.equals(expected));
        }
    }

    /**
     * Greedy continuations of {@code batch} prompts of one length ({@code prompts} row-major), each up to and
     * including its first stop token, at most {@code max_new_tokens}, after the job's repetition penalty; a row that
     * stopped keeps being fed (its later tokens are dropped) so the batch stays rectangular.
     */
    private int[][] greedy(CausalLM model, long[] prompts, int batch) {
        List<List<Integer>> answers = new ArrayList<>();
        for (int r = 0; r < batch; r++) {
            answers.add(new ArrayList<>());
        }
        boolean[] done = new boolean[batch];
        int open = batch;
        int vocab = model.config().vocabSize();
        boolean[][] seen = new boolean[batch][];
        int promptLength = prompts.length / batch;
        for (int r = 0; r < batch; r++) {
            seen[r] = RepetitionPenalty.seen(vocab, prompts, r * promptLength, promptLength);
        }
        try (CachedDecoding decoding = new CachedDecoding(model, batch)) {
            long[] input = prompts;
            for (int step = 0; step < maxNewTokens && open > 0; step++) {
                float[] logits = decoding.next(input);
                input = new long[batch];
                for (int r = 0; r < batch; r++) {
                    int next = Sampler.argmax(penalty.apply(logits, r * vocab, seen[r]));
                    seen[r][next] = true;
                    input[r] = next;
                    if (!done[r]) {
                        answers.get(r).add(next);
                        if (stopIds.contains(next)) {
                            done[r] = true;
                            open--;
                        }
                    }
                }
            }
        }
        return answers.stream().map(a -> a.stream().mapToInt(Integer::intValue).toArray()).toArray(int[][]::new);
    }

    /** The tokens before the first labelled one. */
    private int promptLength(int example) {
        int[] labels = examples.get(example).labels();
        int start = 0;
        while (start < labels.length && labels[start] == Example.IGNORE_INDEX) {
            start++;
        }
        return start;
    }

    /** The text of {@code ids} up to the first stop token, white space trimmed. */
    private String text(int[] ids) {
        int end = 0;
        while (end < ids.length && !stopIds.contains(ids[end])) {
            end++;
        }
        return tokenizer.decode(Arrays.copyOf(ids, end)).strip();
    }
}
