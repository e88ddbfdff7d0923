package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.LaplaceCodebook;
import io.qlora4j.quant.cvxq.NdCvxqTensor;
import io.qlora4j.quant.cvxq.RowClusters;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * CVXQ mixed precision (docs/CVXQ-FORMAT.md): every block linear in its own partitions and bit depths, chosen by
 * calibration ({@code qlora4j quantize quantization_method=cvxq}), stored as {@code prefix.weight} (the bit planes,
 * U8) with {@code prefix.weight.cvxq_depth} (U8 {@code [clusters, in]}), {@code prefix.weight.cvxq_loc} and
 * {@code prefix.weight.cvxq_scale} (F16 {@code [clusters, in]}) and {@code prefix.weight.cvxq_cluster} (U8 or I16
 * {@code [out]}). config.json says {@code "quant_method": "cvxq"}. qlora4j reads it, trains over it and exports it;
 * quantizing needs the calibration pass, so a per-tensor {@link #quantize} is refused by name.
 */
public final class CvxqFormat implements BaseFormat {
    /** The {@code quant_method} of config.json's {@code quantization_config}. */
    public static final String METHOD = "cvxq";
    /** The layout version this class writes and reads. */
    public static final int FORMAT_VERSION = 1;

    static final String DEPTH = ".weight.cvxq_depth";
    static final String LOC = ".weight.cvxq_loc";
    static final String SCALE = ".weight.cvxq_scale";
    static final String CLUSTER = ".weight.cvxq_cluster";

    /**
     * How it joins the registry: {@code quantization_method=cvxq} is known (and chosen by {@code quantize}, which
     * calibrates), no {@code quantization_bit} chooses it on the fly, and checkpoints are recognised by their
     * {@code quantization_config}.
     */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("CVXQ", List.of(METHOD), List.of(),
            List.of(), keys -> {
                throw new IllegalArgumentException(onTheFly());
            }, CvxqFormat::recognise);

    /** Why a job cannot convert a model to CVXQ while loading it, and what to run instead. */
    public static String onTheFly() {
        return "quantization_method cvxq needs calibration data: run qlora4j quantize quantization_method=cvxq"
                + " target_bits=B dataset=FILE export_dir=DIR, then load DIR (leave quantization_method unset)";
    }

    private final double bitsPerParameter;
    private final int groupSize;

    /**
     * The format of a CVXQ checkpoint quantized to {@code bitsPerParameter} (stored bits per parameter of the block
     * linears, side information included) with clusters of {@code groupSize} rows.
     */
    public CvxqFormat(double bitsPerParameter, int groupSize) {
        if (!(bitsPerParameter >= 0 && bitsPerParameter <= 16) || groupSize < 1) {
            throw new IllegalArgumentException("CVXQ bits " + bitsPerParameter + " or group_size " + groupSize
                    + " out of range");
        }
        this.bitsPerParameter = bitsPerParameter;
        this.groupSize = groupSize;
    }

    private static BaseFormat recognise(JsonNode q) {
        if (!METHOD.equals(q.path("quant_method").asText())) {
            return null;
        }
        int version = q.path("format_version").asInt(-1);
        if (version != FORMAT_VERSION) {
            throw new IllegalArgumentException("cvxq format_version " + q.path("format_version")
                    + " is not supported (qlora4j reads version " + FORMAT_VERSION + ")");
        }
        if (!q.path("bits").isNumber() || !q.path("group_size").canConvertToInt()) {
            throw new IllegalArgumentException("cvxq needs numeric bits and group_size");
        }
        return new CvxqFormat(q.path("bits").asDouble(), q.path("group_size").asInt());
    }

    @Override
    public String method() {
        return METHOD;
    }

    /** The stored bits per parameter rounded up: CVXQ has no single bit width. */
    @Override
    public int bits() {
        return (int) Math.ceil(bitsPerParameter);
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "CVXQ mixed precision, %.3f bits per parameter, clusters of %d rows",
                bitsPerParameter, groupSize);
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put(FormatKeys.METHOD, METHOD);
        return k;
    }

    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + DEPTH);
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return List.of(prefix + ".weight", prefix + DEPTH, prefix + LOC, prefix + SCALE, prefix + CLUSTER);
    }

    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        TensorInfo depth = info(reader, prefix + DEPTH, DType.U8, 2);
        long clusters = depth.shape()[0];
        long columns = depth.shape()[1];
        TensorInfo cluster = info(reader, prefix + CLUSTER, CvxqTensor.clusterIdBytes((int) clusters) == 1
                ? DType.U8 : DType.I16, 1);
        int rows = Math.toIntExact(cluster.shape()[0]);
        for (String side : new String[] {LOC, SCALE}) {
            TensorInfo t = info(reader, prefix + side, DType.F16, 2);
            if (!Arrays.equals(t.shape(), depth.shape())) {
                throw new ModelException(t.file() + ": tensor " + t.name() + " has shape " + Arrays.toString(t.shape())
                        + ", expected " + Arrays.toString(depth.shape()) + " as " + depth.name());
            }
        }
        info(reader, prefix + ".weight", DType.U8, 1);
        try {
            ByteBuffer ids = reader.bytes(prefix + CLUSTER).order(ByteOrder.LITTLE_ENDIAN);
            int[] clusterOfRow = new int[rows];
            for (int r = 0; r < rows; r++) {
                clusterOfRow[r] = cluster.dtype() == DType.U8 ? ids.get(r) & 0xFF : ids.getShort(2 * r);
            }
            return weight(new CvxqTensor(rows, Math.toIntExact(columns),
                    new RowClusters(clusterOfRow, (int) clusters), array(reader.bytes(prefix + DEPTH)),
                    shorts(reader.bytes(prefix + LOC)), shorts(reader.bytes(prefix + SCALE)),
                    array(reader.bytes(prefix + ".weight"))));
        } catch (IllegalArgumentException e) {
            throw new ModelException(reader.info(prefix + ".weight").file() + ": CVXQ tensor " + prefix + ".weight: "
                    + e.getMessage(), e);
        }
    }

    private static TensorInfo info(SafetensorsReader reader, String name, DType dtype, int rank)
            throws ModelException {
        if (!reader.contains(name)) {
            throw new ModelException("missing tensor " + name + " of a CVXQ linear");
        }
        TensorInfo t = reader.info(name);
        if (t.dtype() != dtype || t.shape().length != rank) {
            throw new ModelException(t.file() + ": tensor " + name + " is " + t.dtype() + " of rank "
                    + t.shape().length + ", expected " + dtype + " of rank " + rank);
        }
        return t;
    }

    private static byte[] array(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.get(a);
        return a;
    }

    private static short[] shorts(ByteBuffer b) {
        short[] s = new short[b.remaining() / 2];
        b.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(s);
        return s;
    }

    /** CVXQ's bias correction gives every projection a bias, declared by the family's config or not. */
    @Override
    public boolean keepsBiases() {
        return true;
    }

    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        throw new ModelException(onTheFly());
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        ObjectNode q = JsonNodeFactory.instance.objectNode();
        q.put("quant_method", METHOD);
        q.put("format_version", FORMAT_VERSION);
        q.put("bits", bitsPerParameter);
        q.put("group_size", groupSize);
        return q;
    }

    /** {@code ceil(bits * elements / 8)}: what the model-wide allocation spends per weight on average. */
    @Override
    public long storedBytes(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return (long) Math.ceil(bitsPerParameter * n / 8);
    }

    /**
     * On the device ({@code NdCvxqTensor}): the stored bytes, plus 5 more bytes per partition, an int32 slot per row in
     * place of the stored cluster id, the row bias widened from float16 (as the stored size counts it) to float32, and
     * the float32 tables the decode gathers from (the bits of a byte, the Laplace levels).
     */
    @Override
    public long deviceBytes(long[] shape) {
        int rows = Math.toIntExact(shape[0]);
        int clusters = RowClusters.count(rows, groupSize);
        long partitions = 5L * clusters * shape[1];
        long slots = (long) rows * (Integer.BYTES - CvxqTensor.clusterIdBytes(clusters));
        long tables = Float.BYTES * (256L * 8 + LaplaceCodebook.table().length);
        return storedBytes(shape) + partitions + slots + 2L * rows + tables;
    }

    /** The stored form of a packed CVXQ weight, for a writer of CVXQ checkpoints. */
    public static StoredWeight weight(CvxqTensor tensor) {
        return new Weight(tensor);
    }

    /** One CVXQ weight. */
    private record Weight(CvxqTensor tensor) implements HostTensorWeight {
        /** The five entries of docs/CVXQ-FORMAT.md; {@code torchDtype} does not enter them. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            long[] side = {tensor.clusters().clusters(), tensor.columns()};
            writer.addBytes(prefix + ".weight", DType.U8, new long[] {tensor.codes().length}, tensor.codes());
            writer.addBytes(prefix + DEPTH, DType.U8, side, tensor.depths());
            writer.addBytes(prefix + LOC, DType.F16, side, littleEndian(tensor.locs()));
            writer.addBytes(prefix + SCALE, DType.F16, side, littleEndian(tensor.scales()));
            int[] ids = tensor.clusters().clusterOfRow();
            boolean oneByte = CvxqTensor.clusterIdBytes(tensor.clusters().clusters()) == 1;
            ByteBuffer b = ByteBuffer.allocate(ids.length * (oneByte ? 1 : 2)).order(ByteOrder.LITTLE_ENDIAN);
            for (int id : ids) {
                if (oneByte) {
                    b.put((byte) id);
                } else {
                    b.putShort((short) id);
                }
            }
            writer.addBytes(prefix + CLUSTER, oneByte ? DType.U8 : DType.I16, new long[] {ids.length}, b.array());
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new QuantizedLinear(NdCvxqTensor.upload(tensor, manager), bias);
        }

        private static byte[] littleEndian(short[] values) {
            ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asShortBuffer().put(values);
            return b.array();
        }
    }
}
