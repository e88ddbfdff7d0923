package io.qlora4j.data;

import java.util.ArrayList;
import java.util.List;

/**
 * LLaMA-Factory's StringFormatter/EmptyFormatter: a slot list whose text slots get the first
 * {@code {{content}}} of each slot replaced by the message text.
 */
record SlotFormatter(List<Slot> slots) {

    static final String PLACEHOLDER = "{{content}}";

    static SlotFormatter of(Object... slots) {
        List<Slot> list = new ArrayList<>();
        for (Object slot : slots) {
            list.add(slot instanceof Slot s ? s : Slot.text((String) slot));
        }
        return new SlotFormatter(List.copyOf(list));
    }

    /** The slots with {@code content} put in place of the first placeholder of each text slot. */
    List<Slot> apply(String content) {
        List<Slot> out = new ArrayList<>(slots.size());
        for (Slot slot : slots) {
            if (slot.kind() == Slot.Kind.TEXT) {
                String text = slot.text();
                int at = text.indexOf(PLACEHOLDER);
                out.add(at < 0 ? slot
                        : Slot.text(text.substring(0, at) + content + text.substring(at + PLACEHOLDER.length())));
            } else {
                out.add(slot);
            }
        }
        return out;
    }
}
