/** Benchmarks that print ratios against a baseline measured in the same run; not part of the test run. */
package io.qlora4j.bench;
