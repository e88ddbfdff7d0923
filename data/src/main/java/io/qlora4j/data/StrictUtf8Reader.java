package io.qlora4j.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * UTF-8 text decoded strictly, whose errors name the line of the bad byte. A {@code BufferedReader} over
 * {@code Files.newBufferedReader} decodes thousands of bytes ahead of the line it returns and fails with
 * "Input length = 1", naming no line; this reader counts the lines of the bytes it decodes, so a caller (who may
 * buffer it) reports {@link Malformed#line()} exactly.
 */
public final class StrictUtf8Reader extends Reader {
    private static final int BUFFER = 64 * 1024;

    private final InputStream in;
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private final ByteBuffer bytes = ByteBuffer.allocate(BUFFER).flip();
    private long line = 1;
    private boolean eof;
    private boolean flushed;

    /** Bytes that are not UTF-8, on line {@link #line()} (from 1). */
    public static final class Malformed extends IOException {
        private final long line;

        Malformed(long line) {
            super("not valid UTF-8 on line " + line);
            this.line = line;
        }

        /** The line holding the bad byte. */
        public long line() {
            return line;
        }
    }

    /** Decodes {@code in}, which this reader closes. */
    public StrictUtf8Reader(InputStream in) {
        this.in = in;
    }

    @Override
    public int read(char[] cbuf, int off, int len) throws IOException {
        if (flushed) {
            return -1;
        }
        if (len == 0) {
            return 0;
        }
        CharBuffer out = CharBuffer.wrap(cbuf, off, len);
        while (out.position() == off) {
            if (!eof && bytes.remaining() < 4) {
                bytes.compact();
                int n = in.read(bytes.array(), bytes.position(), bytes.remaining());
                if (n < 0) {
                    eof = true;
                } else {
                    bytes.position(bytes.position() + n);
                }
                bytes.flip();
            }
            int from = bytes.position();
            CoderResult result = decoder.decode(bytes, out, eof);
            for (int i = from; i < bytes.position(); i++) {
                if (bytes.get(i) == '\n') {
                    line++;
                }
            }
            if (result.isError()) {
                throw new Malformed(line);
            }
            if (eof && !bytes.hasRemaining()) {
                decoder.flush(out);
                flushed = true;
                break;
            }
            if (result.isOverflow()) {
                break;
            }
        }
        int produced = out.position() - off;
        return produced == 0 && flushed ? -1 : produced;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
