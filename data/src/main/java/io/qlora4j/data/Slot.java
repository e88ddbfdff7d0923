package io.qlora4j.data;

/**
 * One element of a template slot list, as LLaMA-Factory's SLOTS: literal text (may hold
 * {@code {{content}}}) or the tokenizer's bos or eos id. (LLaMA-Factory's named-token slots are
 * used by none of the templates here.)
 */
record Slot(Kind kind, String text) {

    /** What the slot turns into when encoded. */
    enum Kind { TEXT, BOS, EOS }

    static final Slot BOS = new Slot(Kind.BOS, null);
    static final Slot EOS = new Slot(Kind.EOS, null);

    static Slot text(String text) {
        return new Slot(Kind.TEXT, text);
    }
}
