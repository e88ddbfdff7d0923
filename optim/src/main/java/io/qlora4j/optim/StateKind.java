package io.qlora4j.optim;

/** The per-parameter state tensors of AdamW, named as torch names them in its state dict. */
enum StateKind {
    /** First moment: running average of the gradient. */
    EXP_AVG("exp_avg"),
    /** Second moment: running average of the squared gradient. */
    EXP_AVG_SQ("exp_avg_sq");

    private final String key;

    StateKind(String key) {
        this.key = key;
    }

    /** The checkpoint key suffix, as in torch's {@code state_dict()}. */
    String key() {
        return key;
    }
}
