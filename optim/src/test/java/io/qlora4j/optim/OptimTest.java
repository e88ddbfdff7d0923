package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class OptimTest {

    @Test
    void namesAreHuggingFaceOptimNamesWithTheirPagingAndBits() {
        assertEquals(
                List.of("adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit"),
                Optim.keys());
        assertEquals(Optim.PAGED_ADAMW_8BIT, Optim.of("paged_adamw_8bit"));
        assertTrue(Optim.of("paged_adamw_32bit").paged() && !Optim.of("paged_adamw_32bit").eightBit());
        assertTrue(!Optim.of("adamw_8bit").paged() && Optim.of("adamw_8bit").eightBit());
    }

    @Test
    void unknownNameIsOneLineListingTheKnownOnes() {
        IllegalArgumentException error =
                assertThrows(IllegalArgumentException.class, () -> Optim.of("adamw_bnb_8bit"));
        assertEquals(
                "optim 'adamw_bnb_8bit' is not one of adamw_torch, paged_adamw_32bit,"
                        + " paged_adamw_8bit, adamw_8bit",
                error.getMessage());
    }

    @Test
    void builderKeepsOnePageForABudgetBelowItAndRefusesABudgetForAnUnpagedOptim() {
        try (AdamW zero = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPagedBudget(0).build();
                AdamW small = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPagedBudget(1000)
                        .optPageSize(4096).build()) {
            assertEquals(1 << 20, zero.pagingStats().budgetBytes());
            assertEquals(4096, small.pagingStats().budgetBytes());
        }
        IllegalArgumentException unpaged = assertThrows(IllegalArgumentException.class,
                () -> AdamW.builder().optOptim(Optim.ADAMW_8BIT).optPagedBudget(1 << 30).build());
        assertTrue(unpaged.getMessage().contains("adamw_8bit"), unpaged.getMessage());
        assertThrows(IllegalArgumentException.class, () -> AdamW.builder().optPageSize(512).build());
    }
}
