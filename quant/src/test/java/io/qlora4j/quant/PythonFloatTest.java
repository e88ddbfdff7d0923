package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PythonFloatTest {
    @Test
    void matchesPythonReprOnHandPickedValues() {
        // Expected strings are what CPython 3 prints for repr(x); the float32 cases are repr(float(np.float32(v))).
        assertEquals("0.1", PythonFloat.repr(0.1));
        assertEquals("0.10000000149011612", PythonFloat.repr(0.1f));
        assertEquals("2.0", PythonFloat.repr(2.0));
        assertEquals("-0.5", PythonFloat.repr(-0.5));
        assertEquals("0.0", PythonFloat.repr(0.0));
        assertEquals("-0.0", PythonFloat.repr(-0.0));
        assertEquals("0.0001", PythonFloat.repr(1e-4));
        assertEquals("1e-05", PythonFloat.repr(1e-5));
        assertEquals("1.5e-05", PythonFloat.repr(1.5e-5));
        assertEquals("1000000000000000.0", PythonFloat.repr(1e15));
        assertEquals("1e+16", PythonFloat.repr(1e16));
        assertEquals("1.2345678901234568e+17", PythonFloat.repr(123456789012345678.0));
        assertEquals("123.456", PythonFloat.repr(123.456));
    }

    @Test
    void shortestDigitsReadBackToTheSameDouble() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        for (int i = 0; i < 10_000; i++) {
            double d = Double.longBitsToDouble(r.nextLong());
            if (Double.isFinite(d)) {
                assertEquals(d, Double.parseDouble(PythonFloat.repr(d)));
            }
        }
    }
}
