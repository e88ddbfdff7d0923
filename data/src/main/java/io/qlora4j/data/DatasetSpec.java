package io.qlora4j.data;

import java.nio.file.Path;
import java.util.List;

/**
 * One dataset to read: its name, its files (read in order), the record format, the column mapping
 * and {@code num_samples} (0 = every record once).
 */
record DatasetSpec(String name, List<Path> files, Formatting formatting, DatasetColumns columns, int numSamples) {

    /** The record formats of dataset_info.json's {@code formatting}. */
    enum Formatting { ALPACA, SHAREGPT }

    /** The converter for this dataset's records. */
    RecordConverter converter() {
        return switch (formatting) {
            case ALPACA -> new AlpacaConverter(columns);
            case SHAREGPT -> new SharegptConverter(columns);
        };
    }
}
