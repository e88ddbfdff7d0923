/** The {@code qlora4j} command line and the training loop. */
package io.qlora4j.trainer;
