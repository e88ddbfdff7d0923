package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link TorchGenerator} against torch 2.14.1 (CPU): {@code torch.manual_seed(42); t = torch.empty(700);
 * t.uniform_(-b, b)} with {@code b} the kaiming_uniform_(a=sqrt(5)) bound of fan-in 96, printed by Python. 700
 * draws cross the generator's 624-word regeneration; fan-in 96 is a bound where the fused multiply-add and the
 * twice-rounded product give different floats for about half the draws.
 */
class TorchGeneratorTest {

    @Test
    void uniformDrawsAreTorchsValueForValue() {
        double bound = 0.10206207261596574;
        assertEquals(bound, Math.sqrt(3.0) * (Math.sqrt(2.0 / (1 + Math.sqrt(5) * Math.sqrt(5))) / Math.sqrt(96)));
        TorchGenerator generator = new TorchGenerator(42);
        float[] t = new float[700];
        for (int i = 0; i < t.length; i++) {
            t[i] = generator.uniform(-bound, bound);
        }
        assertArrayEquals(new float[] {0.07803039252758026f, 0.08471233397722244f, -0.023910336196422577f,
            0.09375537186861038f, -0.02236216515302658f}, Arrays.copyOf(t, 5));
        assertArrayEquals(new float[] {-0.0251717958599329f, -0.005119852721691132f, -0.08474531769752502f,
            -0.05709424987435341f, -0.0020840666256844997f, -0.06339681893587112f, -0.012656678445637226f,
            0.04153509810566902f}, Arrays.copyOfRange(t, 620, 628));
        double sum = 0;
        for (float v : t) {
            sum += v;
        }
        assertEquals(-2.7576701127545675, sum, 1e-12);
    }
}
