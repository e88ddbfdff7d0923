package io.qlora4j.data;

import java.util.ArrayList;
import java.util.List;

/**
 * LLaMA-Factory's StringFormatter/EmptyFormatter: a slot list whose text slots get the first
 * {@code {{content}}} of each slot replaced by the message text (and a user turn's first {@code {{idx}}} by its index).
 */
record SlotFormatter(List<Slot> slots) {

    static final String PLACEHOLDER = "{{content}}";
    private static final String IDX = "{{idx}}";

    static SlotFormatter of(Object... slots) {
        List<Slot> list = new ArrayList<>();
        for (Object slot : slots) {
            list.add(slot instanceof Slot s ? s : Slot.text((String) slot));
        }
        return new SlotFormatter(List.copyOf(list));
    }

    /** The slots with {@code content} put in place of the first placeholder of each text slot. */
    List<Slot> apply(String content) {
        return apply(content, null);
    }

    /**
     * {@link #apply(String)}, then, unless {@code idx} is null, the first {@code {{idx}}} of each filled text slot
     * replaced by it: LLaMA-Factory's {@code Template._encode} passes a user turn's index this way, and since
     * StringFormatter fills one keyword after the other, a {@code {{idx}}} the user's text brings is replaced too.
     */
    List<Slot> apply(String content, String idx) {
        List<Slot> out = new ArrayList<>(slots.size());
        for (Slot slot : slots) {
            if (slot.kind() == Slot.Kind.TEXT) {
                String text = replaceFirst(slot.text(), PLACEHOLDER, content);
                out.add(Slot.text(idx == null ? text : replaceFirst(text, IDX, idx)));
            } else {
                out.add(slot);
            }
        }
        return out;
    }

    private static String replaceFirst(String text, String placeholder, String value) {
        int at = text.indexOf(placeholder);
        return at < 0 ? text : text.substring(0, at) + value + text.substring(at + placeholder.length());
    }
}
