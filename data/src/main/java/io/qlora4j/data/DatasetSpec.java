package io.qlora4j.data;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * One dataset to read: its name, its files (read in order), the record format, the column mapping,
 * {@code num_samples} (0 = every record once) and the fields its dataset_info.json entry's {@code columns} name,
 * of which every one must be in some record (LLaMA-Factory's converters read a named column by key, and a field no
 * record has stops them with a KeyError; qlora4j would otherwise read it as empty).
 */
record DatasetSpec(String name, List<Path> files, Formatting formatting, DatasetColumns columns, int numSamples,
        Set<String> namedFields) {

    /** Copies the field set. */
    DatasetSpec {
        namedFields = Set.copyOf(namedFields);
    }

    /** This dataset read whole, its {@code num_samples} not drawn. */
    DatasetSpec unsampled() {
        return new DatasetSpec(name, files, formatting, columns, 0, namedFields);
    }

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
