package io.qlora4j.trainer.config;

/** A job file or command-line setting that is wrong: the one-line message names the source, the key and what is allowed. */
public class ConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Creates the exception with its one-line message. */
    public ConfigException(String message) {
        super(message);
    }
}
