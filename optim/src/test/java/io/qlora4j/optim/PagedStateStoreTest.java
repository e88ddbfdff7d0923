package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class PagedStateStoreTest extends EngineTest {

    /** 8-bit: 5000 and 17000 elements in 8 bits, 3000 and 700 below min_8bit_size in float32. */
    private static final int[] SIZES = {5000, 3000, 17000, 700};
    private static final long PAGE = 16 << 10;
    private static final int STEPS = 50;

    /** The outcome of a run: final parameters, exported state, and the stats seen at each step. */
    private record Outcome(List<float[]> params, Map<String, StateTensor> state, long stateBytes) {}

    private Outcome run(AdamW.Builder builder, long budget) {
        SyntheticRun run = new SyntheticRun(manager, SIZES);
        try (AdamW adam = builder.build()) {
            for (int step = 0; step < STEPS; step++) {
                run.steps(adam, step, step + 1);
                PagingStats stats = adam.pagingStats();
                assertTrue(stats.deviceBytes() <= budget, "step " + step + ": " + stats);
                assertTrue(stats.maxDeviceBytes() <= budget, "step " + step + ": " + stats);
            }
            PagingStats stats = adam.pagingStats();
            return new Outcome(run.values(), adam.exportState(), stats.deviceBytes() + stats.hostBytes());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void pagedRunsEndBitIdenticalToUnpagedForUnlimitedHalfAndOnePageBudgets(boolean eightBit) {
        Optim unpaged = eightBit ? Optim.ADAMW_8BIT : Optim.ADAMW_TORCH;
        Optim paged = eightBit ? Optim.PAGED_ADAMW_8BIT : Optim.PAGED_ADAMW_32BIT;
        // unpaged with the default 1 MiB pages: every tensor's state is one page
        Outcome reference = run(AdamW.builder().optOptim(unpaged), Long.MAX_VALUE);
        Outcome unlimited =
                run(AdamW.builder().optOptim(paged).optPageSize(PAGE), Long.MAX_VALUE);
        long half = reference.stateBytes() / 2;
        Outcome halfState =
                run(AdamW.builder().optOptim(paged).optPageSize(PAGE).optPagedBudget(half), half);
        Outcome onePage =
                run(AdamW.builder().optOptim(paged).optPageSize(PAGE).optPagedBudget(PAGE), PAGE);
        for (Outcome outcome : List.of(unlimited, halfState, onePage)) {
            for (int p = 0; p < SIZES.length; p++) {
                assertArrayEquals(reference.params().get(p), outcome.params().get(p), "param " + p);
            }
            assertEquals(reference.state().keySet(), outcome.state().keySet());
            reference.state().forEach((key, tensor) -> {
                assertEquals(tensor.shape(), outcome.state().get(key).shape(), key);
                assertArrayEquals(tensor.values(), outcome.state().get(key).values(), key);
            });
        }
        // the parameters moved: a run that changed nothing would pass the comparison too
        SyntheticRun initial = new SyntheticRun(manager, SIZES);
        assertTrue(Math.abs(initial.values().get(0)[0] - reference.params().get(0)[0]) > 1e-3);
        assertEquals(eightBit, reference.state().containsKey("layer0.lora_A.weight.exp_avg.codes"));
    }

    /**
     * Host pages that are not plain direct buffers, as pinned memory is not: each page is carved out of one
     * preallocated slab, and every copy goes through a staging buffer of its own, counted.
     */
    private static final class SlabPages implements HostPages {
        private final ByteBuffer slab = ByteBuffer.allocateDirect(8 << 20);
        private final Set<ByteBuffer> live = Collections.newSetFromMap(new IdentityHashMap<>());
        private int uploads;
        private int downloads;
        private boolean closed;

        @Override
        public ByteBuffer allocate(int bytes) {
            ByteBuffer page = slab.slice(slab.position(), bytes).order(ByteOrder.nativeOrder());
            slab.position(slab.position() + bytes);
            live.add(page);
            return page;
        }

        @Override
        public void free(ByteBuffer buffer) {
            assertTrue(live.remove(buffer), "freed a buffer it did not allocate");
        }

        @Override
        public NDArray upload(NDManager manager, Shape shape, DataType type, ByteBuffer src) {
            uploads++;
            int bytes = Math.toIntExact(shape.size() * type.getNumOfBytes());
            ByteBuffer staged = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
            staged.put(src.slice().limit(bytes)).flip();
            return HostPages.super.upload(manager, shape, type, staged);
        }

        @Override
        public void download(NDArray array, ByteBuffer dst) {
            downloads++;
            HostPages.super.download(array, dst);
        }

        @Override
        public String describe() {
            return "slab pages";
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    @Test
    void pagesKeptInAnotherHostMemoryEndBitIdenticalAndAreAllGivenBack() {
        Outcome reference = run(AdamW.builder().optOptim(Optim.ADAMW_TORCH), Long.MAX_VALUE);
        SlabPages pages = new SlabPages();
        Outcome slab = run(AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPageSize(PAGE).optPagedBudget(PAGE)
                .optHostPages(pages), PAGE);
        for (int p = 0; p < SIZES.length; p++) {
            assertArrayEquals(reference.params().get(p), slab.params().get(p), "param " + p);
        }
        assertTrue(pages.uploads > STEPS && pages.downloads > STEPS, pages.uploads + " / " + pages.downloads);
        assertTrue(pages.live.isEmpty(), pages.live.size() + " pages not freed");
        assertTrue(pages.closed);
    }

    @Test
    void withinBudgetNothingIsPagedAfterTheFirstStep() {
        SyntheticRun run = new SyntheticRun(manager, SIZES);
        try (AdamW adam = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPageSize(PAGE)
                .optPagedBudget(1 << 20).build()) {
            run.steps(adam, 0, 3);
            PagingStats stats = adam.pagingStats();
            assertEquals(0, stats.pagedInBytes());
            assertEquals(0, stats.pagedOutBytes());
            assertEquals(0, stats.hostBytes());
            // both float32 moments of every element
            assertEquals(8L * (5000 + 3000 + 17000 + 700), stats.deviceBytes());
            assertEquals(stats.deviceBytes(), stats.maxDeviceBytes());
            assertEquals(1 << 20, stats.budgetBytes());
        }
    }

    @Test
    void leastRecentlyUsedEvictionUnderCyclicOrderPagesTheWholeStateEachStep() {
        // two parameters of 256 elements, 1 KiB pages of 128 float32 elements: 4 pages of 1 KiB
        SyntheticRun run = new SyntheticRun(manager, 256, 256);
        try (AdamW adam = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPageSize(1024)
                .optPagedBudget(2048).build()) {
            run.steps(adam, 0, 1);
            // first step: pages 0, 1 created; 2 and 3 evict 0 and 1 (written out, nothing in)
            assertEquals(new PagingStats(2048, 2048, 2048, 0, 2048, 2048), adam.pagingStats());
            run.steps(adam, 1, 3);
            // each later step: every page comes in and goes out once
            assertEquals(new PagingStats(2048, 2048, 2048, 4096, 4096, 2048), adam.pagingStats());
        }
    }

    @ParameterizedTest
    @EnumSource(Optim.class)
    void exportImportContinuesBitIdenticallyForEveryOptimWhateverTheBudget(Optim optim) {
        SyntheticRun straight = new SyntheticRun(manager, SIZES);
        Map<String, StateTensor> straightState;
        try (AdamW adam = AdamW.builder().optOptim(optim).build()) {
            straight.steps(adam, 0, 8);
            straightState = adam.exportState();
        }
        SyntheticRun resumed = new SyntheticRun(manager, SIZES);
        Map<String, StateTensor> halfway;
        AdamW.Builder first = AdamW.builder().optOptim(optim).optPageSize(PAGE);
        AdamW.Builder second = AdamW.builder().optOptim(optim).optPageSize(PAGE * 2);
        if (optim.paged()) {
            // exported while most pages are on the host; resumed under a different budget
            first.optPagedBudget(PAGE);
            second.optPagedBudget(PAGE * 6);
        }
        try (AdamW adam = first.build()) {
            resumed.steps(adam, 0, 4);
            halfway = adam.exportState();
            assertTrue(!optim.paged() || adam.pagingStats().hostBytes() > 0);
        }
        try (AdamW adam = second.build()) {
            adam.importState(halfway);
            PagingStats loaded = adam.pagingStats();
            assertEquals(0, loaded.deviceBytes());
            assertTrue(loaded.hostBytes() > 0);
            resumed.steps(adam, 4, 8);
            Map<String, StateTensor> resumedState = adam.exportState();
            assertEquals(straightState.keySet(), resumedState.keySet());
            straightState.forEach((key, tensor) ->
                    assertArrayEquals(tensor.values(), resumedState.get(key).values(), key));
        }
        for (int p = 0; p < SIZES.length; p++) {
            assertArrayEquals(straight.values().get(p), resumed.values().get(p), "param " + p);
        }
    }

    @Test
    void importRefusesStateInTheOtherNumberFormat() {
        SyntheticRun run = new SyntheticRun(manager, 5000);
        Map<String, StateTensor> eightBit;
        try (AdamW adam = AdamW.builder().optOptim(Optim.ADAMW_8BIT).build()) {
            run.steps(adam, 0, 1);
            eightBit = adam.exportState();
        }
        try (AdamW adam = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).build()) {
            IllegalArgumentException error =
                    assertThrows(IllegalArgumentException.class, () -> adam.importState(eightBit));
            assertTrue(error.getMessage().contains("'layer0.lora_A.weight.exp_avg.codes' is 8-bit"),
                    error.getMessage());
        }
    }
}
