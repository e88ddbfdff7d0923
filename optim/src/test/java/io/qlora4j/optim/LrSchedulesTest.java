package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void unknownTypeNamesTheAllowedTypes() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LrSchedules.create("polynomial", BASE, WARMUP, TOTAL));
        assertTrue(e.getMessage().contains("'polynomial'"), e.getMessage());
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
