/** The {@code qlora4j} command line: {@link io.qlora4j.trainer.cli.Main} and one class per subcommand. */
package io.qlora4j.trainer.cli;
