package io.qlora4j.optim;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** Base of the tests that run on DJL's real engine: one fresh manager per test. */
abstract class EngineTest {

    /** Owns the test's parameters and gradients; closed after each test. */
    NDManager manager;

    @BeforeEach
    void openManager() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void closeManager() {
        manager.close();
    }
}
