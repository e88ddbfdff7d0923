package io.qlora4j.optim;

import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * One device array of a state page: its element type and length. A page's host copy is its parts'
 * bytes back to back, in native byte order.
 *
 * @param type the element type
 * @param count the number of elements
 */
record PagePart(DataType type, int count) {

    /** The part's size in bytes. */
    long bytes() {
        return (long) count * type.getNumOfBytes();
    }

    /** The sum of the parts' sizes: the bytes of a page made of them. */
    static long bytes(List<PagePart> parts) {
        long total = 0;
        for (PagePart part : parts) {
            total += part.bytes();
        }
        return total;
    }

    /** Part {@code index} of a page's host bytes, as a native-order view from position 0. */
    static ByteBuffer slice(ByteBuffer page, List<PagePart> parts, int index) {
        long offset = bytes(parts.subList(0, index));
        return page.duplicate()
                .position(Math.toIntExact(offset))
                .limit(Math.toIntExact(offset + parts.get(index).bytes()))
                .slice()
                .order(ByteOrder.nativeOrder());
    }
}
