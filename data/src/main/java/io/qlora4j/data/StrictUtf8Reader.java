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
 * buffer it) reports {@link Malformed#line()} exactly. A byte order mark before the text is dropped, so that no
 * format's first record or text starts with it.
 */
public final class StrictUtf8Reader extends Reader {
    private static final int BUFFER = 64 * 1024;
    /** UTF-8's byte order mark, which some editors write before the text. */
    private static final byte[] BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

    private final InputStream in;
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private final ByteBuffer bytes = ByteBuffer.allocate(BUFFER).flip();
    private long line = 1;
    private boolean eof;
    private boolean flushed;
    private boolean started;

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
        if (!started) {
            started = true;
            while (!eof && bytes.remaining() < BOM.length) {
                fill();
            }
            int at = bytes.position();
            if (bytes.remaining() >= BOM.length && bytes.get(at) == BOM[0] && bytes.get(at + 1) == BOM[1]
                    && bytes.get(at + 2) == BOM[2]) {
                bytes.position(at + BOM.length);
            }
        }
        while (out.position() == off) {
            if (!eof && bytes.remaining() < 4) {
                fill();
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

    /** Reads more bytes after those not decoded yet; sets {@code eof} at the end of the stream. */
    private void fill() throws IOException {
        bytes.compact();
        int n = in.read(bytes.array(), bytes.position(), bytes.remaining());
        if (n < 0) {
            eof = true;
        } else {
            bytes.position(bytes.position() + n);
        }
        bytes.flip();
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
