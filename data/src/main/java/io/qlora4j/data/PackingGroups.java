package io.qlora4j.data;

/**
 * Which records are packed together, as LLaMA-Factory's {@code dataset.map(batched=True, batch_size=...,
 * num_proc=...)} groups them: the records (every row of the merged datasets, including those the encoding then
 * skips) are cut into {@code shards} contiguous shards, the first {@code rows % shards} one record longer (datasets'
 * {@code shard(contiguous=True)}; never more shards than records), and each shard into groups of {@code batch}
 * records from its start, its last group shorter.
 *
 * @param batch records per group ({@code preprocessing_batch_size})
 * @param shards the shards ({@code preprocessing_num_workers}; 1 for none)
 * @param rows the records in all, needed only with more than one shard
 */
record PackingGroups(int batch, int shards, long rows) {

    /** Whether record {@code row} (0-based, in reading order) is the last of its group. */
    boolean endsGroup(long row) {
        long n = Math.min(shards, rows);
        if (n <= 1) {
            return (row + 1) % batch == 0;
        }
        long div = rows / n;
        long mod = rows % n;
        // the shard holding row: the first mod shards have div + 1 records
        long shard = row < mod * (div + 1) ? row / (div + 1) : mod + (row - mod * (div + 1)) / div;
        long start = div * shard + Math.min(shard, mod);
        long end = start + div + (shard < mod ? 1 : 0);
        return (row - start + 1) % batch == 0 || row == end - 1;
    }
}
