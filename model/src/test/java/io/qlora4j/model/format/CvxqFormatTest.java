package io.qlora4j.model.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.PartitionQuantizer;
import io.qlora4j.quant.cvxq.RowClusters;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CvxqFormatTest {
    private static final String PREFIX = "model.layers.0.mlp.up_proj";

    @TempDir
    Path dir;

    static CvxqTensor tensor(int rows, int columns, int clusters, long seed) {
        Random random = new Random(seed);
        float[] w = new float[rows * columns];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (random.nextGaussian() * 0.02);
        }
        byte[] depths = new byte[clusters * columns];
        for (int p = 0; p < depths.length; p++) {
            depths[p] = (byte) random.nextInt(9);
        }
        return CvxqTensor.quantize(w, rows, columns, RowClusters.byScore(random.doubles(rows).toArray(), clusters),
                depths, PartitionQuantizer.plain());
    }

    private SafetensorsReader written(CvxqTensor t) throws ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            CvxqFormat.weight(t).write(writer, PREFIX, "bfloat16");
        }
        return SafetensorsReader.open(dir);
    }

    @Test
    void writtenEntriesReadBackAsTheSameTensor() throws Exception {
        CvxqTensor t = tensor(40, 24, 3, 1);
        CvxqFormat format = new CvxqFormat(3.1, 16);
        try (SafetensorsReader reader = written(t)) {
            assertTrue(format.isStored(reader, PREFIX));
            assertFalse(format.isStored(reader, "model.layers.0.mlp.down_proj"));
            Set<String> names = new HashSet<>();
            for (TensorInfo info : reader.tensors()) {
                names.add(info.name());
            }
            assertEquals(names, new HashSet<>(format.storedKeys(reader, PREFIX)));
            assertEquals(DType.U8, reader.info(PREFIX + ".weight").dtype());
            assertEquals(DType.F16, reader.info(PREFIX + ".weight.cvxq_loc").dtype());
            assertArrayEquals(new long[] {3, 24}, reader.info(PREFIX + ".weight.cvxq_depth").shape());
            StoredWeight read = format.read(reader, PREFIX);
            assertArrayEquals(new long[] {40, 24}, read.shape());
            assertEquals(t.bytes(), read.bytes());
            assertArrayEquals(t.dequantize(), read.dequantize());
            try (NDManager m = NDManager.newBaseManager();
                    BaseLinear uploaded = read.upload(m.zeros(new Shape(40)), m)) {
                // what the device keeps beyond the file (the float16 bias the stored size counts now float32), as
                // memory planning counts it for a format of t's 3 clusters (40 rows / 13)
                CvxqFormat threeClusters = new CvxqFormat(3.1, 13);
                assertEquals(threeClusters.deviceBytes(read.shape()) - threeClusters.storedBytes(read.shape()),
                        uploaded.bytes() - (t.bytes() + 2 * 40));
            }
        }
    }

    @Test
    void moreThan256ClustersStoreTwoByteIds() throws Exception {
        CvxqTensor t = tensor(600, 3, 300, 2);
        try (SafetensorsReader reader = written(t)) {
            assertEquals(DType.I16, reader.info(PREFIX + ".weight.cvxq_cluster").dtype());
            assertArrayEquals(t.dequantize(), new CvxqFormat(4, 2).read(reader, PREFIX).dequantize());
        }
    }

    @Test
    void uploadedLayerLendsExactlyTheJavaDecode() throws Exception {
        CvxqTensor t = tensor(33, 17, 2, 3);
        try (SafetensorsReader reader = written(t); NDManager manager = NDManager.newBaseManager()) {
            BaseLinear layer = new CvxqFormat(3, 16).read(reader, PREFIX).upload(null, manager);
            assertArrayEquals(t.dequantize(), layer.withWeight(DataType.FLOAT32, w -> w.toFloatArray()));
            assertEquals(33, layer.outFeatures());
            layer.close();
        }
    }

    @Test
    void quantizationConfigIsRecognisedByTheRegistry() throws Exception {
        ObjectNode q = new CvxqFormat(2.994, 256).quantizationConfig("bfloat16");
        assertEquals("{\"quant_method\":\"cvxq\",\"format_version\":1,\"bits\":2.994,\"group_size\":256}", q.toString());
        BaseFormat f = BaseFormats.fromQuantizationConfig(q, "config.json");
        assertEquals("cvxq", f.method());
        assertEquals("CVXQ mixed precision, 2.994 bits per parameter, clusters of 256 rows", f.describe());
        q.put("format_version", 2);
        ModelException e = assertThrows(ModelException.class, () -> BaseFormats.fromQuantizationConfig(q, "config.json"));
        assertTrue(e.getMessage().contains("format_version 2 is not supported"), e.getMessage());
    }

    @Test
    void perTensorQuantizationIsRefusedWithWhatToRunInstead() {
        ModelException e = assertThrows(ModelException.class, () -> new CvxqFormat(3, 256)
                .quantize(FloatSource.of(new float[4]), new long[] {2, 2}));
        assertTrue(e.getMessage().contains("qlora4j quantize quantization_method=cvxq"), e.getMessage());
        assertTrue(BaseFormats.methods().contains("cvxq"));
    }
}
