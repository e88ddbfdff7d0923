package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

class LrSchedulesTest {

    private static final double BASE = 2e-4;
    private static final int WARMUP = 10;
    private static final int TOTAL = 100;

    private static void assertLr(double expected, LrSchedule schedule, int step) {
        assertEquals(expected, schedule.lr(step), 1e-15, "step " + step);
    }

    @Test
    void constantIgnoresWarmup() {
        LrSchedule schedule = LrSchedules.create("constant", BASE, WARMUP, TOTAL);
        for (int step : new int[] {0, 9, 10, 55, 99}) {
            assertLr(BASE, schedule, step);
        }
    }

    @Test
    void constantWithWarmupStartsAtZeroAndHoldsAfterWarmup() {
        LrSchedule schedule = LrSchedules.create("constant_with_warmup", BASE, WARMUP, TOTAL);
        assertLr(0, schedule, 0);
        assertLr(BASE * 0.5, schedule, 5);
        assertLr(BASE * 0.9, schedule, 9);
        assertLr(BASE, schedule, 10);
        assertLr(BASE, schedule, 99);
    }

    @Test
    void linearWarmsUpThenDecaysToZeroAtTheLastStep() {
        LrSchedule schedule = LrSchedules.create("linear", BASE, WARMUP, TOTAL);
        assertLr(0, schedule, 0);
        assertLr(BASE * 0.1, schedule, 1);
        assertLr(BASE, schedule, 10);
        assertLr(BASE * 45 / 90, schedule, 55);
        assertLr(BASE / 90, schedule, 99);
        assertLr(0, schedule, 100);
        assertLr(0, schedule, 150);
    }

    @Test
    void linearWithoutWarmupStartsAtTheBaseRate() {
        LrSchedule schedule = LrSchedules.create("linear", BASE, 0, TOTAL);
        assertLr(BASE, schedule, 0);
        assertLr(BASE * 0.5, schedule, 50);
        assertLr(BASE * 0.01, schedule, 99);
    }

    @Test
    void cosineWarmsUpThenFollowsAHalfCosineToZero() {
        LrSchedule schedule = LrSchedules.create("cosine", BASE, WARMUP, TOTAL);
        assertLr(0, schedule, 0);
        assertLr(BASE * 0.9, schedule, 9);
        assertLr(BASE, schedule, 10);
        // progress 1/2: cos(pi / 2) = 0, half the base rate
        assertLr(BASE * 0.5, schedule, 55);
        // progress 1/3: cos(pi / 3) = 1/2, three quarters
        assertLr(BASE * 0.75, schedule, 40);
        // progress 89/90: (1 + cos(89 pi / 90)) / 2 = sin^2(pi / 180)
        double sin = Math.sin(Math.PI / 180);
        assertLr(BASE * sin * sin, schedule, 99);
        assertLr(0, schedule, 100);
    }

    /**
     * transformers 5.12.1's {@code get_scheduler(name, SGD(lr=2e-4), num_warmup_steps=10, num_training_steps=100,
     * scheduler_specific_kwargs=...)}: the rate after 0, 5, 10, 37, 55, 99, 100 and 120 {@code scheduler.step()} calls.
     */
    @Test
    void everyScheduleFollowsTransformersWithItsSettings() {
        int[] steps = {0, 5, 10, 37, 55, 99, 100, 120};
        Object[][] cases = {
            {"cosine_with_restarts", Map.of("num_cycles", 3.0), new double[] {0.0, 0.0001, 0.0002,
                4.8943483704846585e-06, 0.0001, 5.4781046317266e-07, 0.0, 0.0}},
            // Python's %: (num_cycles * progress) % 1.0 is in [0, 1) for a negative num_cycles too
            {"cosine_with_restarts", Map.of("num_cycles", -1.5), new double[] {0.0, 0.0001, 0.0002,
                8.435655349597689e-05, 0.00017071067811865476, 9.476640437570564e-05, 0.0, 0.0}},
            {"polynomial", Map.of("lr_end", 1e-5, "power", 2.0), new double[] {0.0, 0.0001, 0.0002,
                0.00010309999999999997, 5.7499999999999995e-05, 1.0023456790123458e-05, 1e-05, 1e-05}},
            {"polynomial", Map.of(), new double[] {0.0, 0.0001, 0.0002, 0.00014003, 0.00010005,
                2.321111111111103e-06, 9.999999999999998e-08, 9.999999999999998e-08}},
            {"inverse_sqrt", Map.of(), new double[] {0.0, 0.0001, 0.0002, 0.00010397504898200727,
                8.528028654224417e-05, 6.356417261637282e-05, 6.324555320336759e-05, 5.7735026918962585e-05}},
            {"inverse_sqrt", Map.of("timescale", 40.0), new double[] {0.0, 0.0001, 0.0002, 0.00015453348185725117,
                0.00013719886811400705, 0.00011136920927794092, 0.00011094003924504583, 0.00010327955589886444}},
            {"cosine_with_min_lr", Map.of("min_lr_rate", 0.1), new double[] {0.0, 0.0001, 0.0002,
                0.0001629006727063226, 0.00011000000000000002, 2.0054825568281382e-05, 2e-05, 4.105600011929198e-05}},
            {"cosine_with_min_lr", Map.of("min_lr", 5e-5), new double[] {0.0, 0.0001, 0.0002, 0.0001690838939219355,
                0.000125, 5.004568797356782e-05, 5e-05, 6.754666676607664e-05}},
            {"cosine", Map.of("num_cycles", 1.5), new double[] {0.0, 0.0001, 0.0002, 4.8943483704846475e-06,
                9.999999999999998e-05, 5.4781046317266e-07, 0.0, 0.00015000000000000007}},
        };
        for (Object[] c : cases) {
            @SuppressWarnings("unchecked")
            LrSchedule schedule = LrSchedules.create((String) c[0], BASE, WARMUP, TOTAL, (Map<String, Double>) c[1]);
            double[] expected = (double[]) c[2];
            for (int k = 0; k < steps.length; k++) {
                assertEquals(expected[k], schedule.lr(steps[k]), 1e-12 * BASE, c[0] + " " + c[1] + ", step " + steps[k]);
            }
        }
    }

    @Test
    void settingsAScheduleDoesNotTakeOrTransformersRefusesAreRefused() {
        assertThrows(ScheduleSettingException.class,
                () -> LrSchedules.create("linear", BASE, WARMUP, TOTAL, Map.of("num_cycles", 2.0)));
        assertThrows(ScheduleSettingException.class,
                () -> LrSchedules.create("polynomial", BASE, WARMUP, TOTAL, Map.of("lr_end", 1.0)));
        assertThrows(ScheduleSettingException.class,
                () -> LrSchedules.create("cosine_with_min_lr", BASE, WARMUP, TOTAL, Map.of()));
        assertThrows(ScheduleSettingException.class, () -> LrSchedules.create("cosine_with_min_lr", BASE, WARMUP,
                TOTAL, Map.of("min_lr", 1e-5, "min_lr_rate", 0.1)));
        // an unknown type is not a settings fault
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> LrSchedules.create("reduce_lr_on_plateau", BASE, WARMUP, TOTAL, Map.of("num_cycles", 2.0)));
        assertFalse(type instanceof ScheduleSettingException, type.getMessage());
    }

    @Test
    void aPolynomialRunNoLongerThanItsWarmupOnlyWarmsUp() {
        // transformers' lambda for step < num_warmup_steps: step / num_warmup_steps, whatever the run's length
        for (int total : new int[] {5, 10}) {
            LrSchedule schedule = LrSchedules.create("polynomial", BASE, 10, total, Map.of());
            for (int step = 0; step < total; step++) {
                assertEquals(BASE * step / 10, schedule.lr(step), 1e-15, "total " + total + ", step " + step);
            }
        }
        // the rate after the last step of a run exactly as long as its warmup: lr_end, not 0 / 0
        assertEquals(1e-7, LrSchedules.create("polynomial", BASE, 10, 10, Map.of()).lr(10), 1e-20);
    }

    @Test
    void unknownTypeNamesTheAllowedTypes() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LrSchedules.create("reduce_lr_on_plateau", BASE, WARMUP, TOTAL));
        assertTrue(e.getMessage().contains("'reduce_lr_on_plateau'"), e.getMessage());
        assertTrue(
                e.getMessage().contains("constant, constant_with_warmup, linear, cosine"),
                e.getMessage());
    }

    @Test
    void warmupStepsBelowOneAreAShareOfTheRunAsInTransformers5() {
        assertEquals(3, LrSchedules.warmupSteps(0.03, 100));
        assertEquals(10, LrSchedules.warmupSteps(0.1, 95));
        assertEquals(5, LrSchedules.warmupSteps(5, 100));
        assertEquals(2, LrSchedules.warmupSteps(2.9, 100), "int(2.9): the fraction part is dropped");
        assertEquals(1, LrSchedules.warmupSteps(1, 100));
        assertEquals(0, LrSchedules.warmupSteps(0, 100));
        // 100 * 0.07 is 7.000000000000001 in double, as in Python: the ceil gives 8
        assertEquals(8, LrSchedules.warmupSteps(0.07, 100));
        assertThrows(IllegalArgumentException.class, () -> LrSchedules.warmupSteps(-1, 100));
    }
}
