package io.qlora4j.optim;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * AdamW state in fixed-size pages under a device budget. Each parameter's state is cut into pages
 * of at most {@code pageBytes} bytes (both moments of a run of elements, in the optimizer's number
 * format); pages on the device count against the budget, the others live in host memory (direct
 * buffers). A step visits the pages in parameter order: a page not on the device is copied in,
 * first evicting the least recently used pages (their state copied out to host memory); while a
 * page is being updated, a single background thread already copies the next one in when the
 * budget has room for both. With the whole state within budget nothing is ever copied after the
 * first step. Loaded state starts on the host and moves in at first use, so a run can resume with
 * any budget. Host buffers and the copies come from {@link HostPages}: direct buffers and the
 * engine's copies by default; on CUDA pinned memory with copies on a side stream (the {@code cuda}
 * module). Every copy is exact, so the pages' home never changes a result.
 */
final class PagedStateStore implements StateStore {

    /**
     * The default page size, 1 MiB: big enough that a host-device copy runs near full bandwidth,
     * small enough that a budget is met closely (a float32 page holds both moments of 131,072
     * elements, an 8-bit page of 516,096).
     */
    static final long DEFAULT_PAGE_BYTES = 1L << 20;
    /** The smallest page size accepted, which still holds one 8-bit block. */
    static final long MIN_PAGE_BYTES = 1L << 10;
    /** A budget with no limit. */
    static final long UNLIMITED = Long.MAX_VALUE;
    /** A requested budget meaning: what the device reports free at the first step, less a margin. */
    static final long DEVICE_FREE = -1;

    private final Optim optim;
    private final long pageBytes;
    private final long requestedBudget;
    private final HostPages hostPages;
    private long budget;

    private Map<String, ParamState> params = new LinkedHashMap<>();
    /** Pages on the device, least recently used first. */
    private final LinkedHashSet<Page> resident = new LinkedHashSet<>();
    private final Map<String, Integer> stepOrder = new HashMap<>();
    private List<String> stepParams = List.of();
    private NDManager manager;
    private long deviceBytes;
    private long pagedIn;
    private long pagedOut;
    private long maxDeviceBytes;
    private ExecutorService prefetcher;
    private Future<?> inFlight;

    /** One parameter's state: step count, format, shape and pages. */
    private static final class ParamState {
        int step;
        final PageFormat format;
        final Shape shape;
        final StateLayout layout;
        final Page[] pages;

        ParamState(PageFormat format, Shape shape, long pageBytes) {
            this.format = format;
            this.shape = shape;
            this.layout = new StateLayout(shape.size(), format.pageElements(pageBytes));
            this.pages = new Page[layout.pages()];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = new Page(format.parts(layout.elements(i)));
            }
        }
    }

    /** One page: device arrays when resident, a host copy once evicted or loaded. */
    private static final class Page {
        final List<PagePart> parts;
        final long bytes;
        NDArray[] device;
        ByteBuffer host;
        /** Whether the host copy holds the page's latest state. */
        boolean hostCurrent;

        Page(List<PagePart> parts) {
            this.parts = parts;
            this.bytes = PagePart.bytes(parts);
        }
    }

    /**
     * A store for {@code optim}'s state in pages of {@code pageBytes}, with a device budget in
     * bytes, {@link #UNLIMITED} or {@link #DEVICE_FREE}, keeping evicted pages in {@code hostPages}.
     */
    PagedStateStore(Optim optim, long pageBytes, long budgetBytes, HostPages hostPages) {
        this.hostPages = hostPages;
        this.optim = optim;
        this.pageBytes = pageBytes;
        this.requestedBudget = budgetBytes;
        this.budget = budgetBytes;
    }

    @Override
    public void beginStep(List<String> order) {
        awaitPrefetch();
        stepParams = List.copyOf(order);
        stepOrder.clear();
        for (int i = 0; i < stepParams.size(); i++) {
            stepOrder.put(stepParams.get(i), i);
        }
        pagedIn = 0;
        pagedOut = 0;
    }

    @Override
    public StateLayout layout(String param, NDArray value) {
        awaitPrefetch();
        ParamState state = params.get(param);
        if (state == null) {
            state = new ParamState(formatFor(value.size()), value.getShape(), pageBytes);
            params.put(param, state);
        } else if (!state.shape.equals(value.getShape())) {
            throw new IllegalArgumentException(
                    "optimizer state '" + param + "." + state.format.suffixes().get(0)
                            + "' has shape " + state.shape + " but its parameter has shape "
                            + value.getShape());
        }
        if (manager == null) {
            manager = value.getManager().getEngine().newBaseManager(value.getDevice());
            budget = requestedBudget != DEVICE_FREE ? requestedBudget : deviceDefault(value.getDevice());
        } else if (!manager.getDevice().equals(value.getDevice())) {
            throw new IllegalArgumentException(
                    "parameter '" + param + "' is on " + value.getDevice()
                            + " but the optimizer state lives on " + manager.getDevice());
        }
        return state.layout;
    }

    @Override
    public int nextStep(String param) {
        return ++params.get(param).step;
    }

    @Override
    public Moments acquire(String param, int index, NDArray like) {
        awaitPrefetch();
        ParamState state = params.get(param);
        Page page = state.pages[index];
        if (page.device == null) {
            move(plan(page, null), page);
        } else {
            resident.remove(page);
            resident.add(page);
        }
        page.hostCurrent = false;
        Page next = next(param, index);
        if (next != null && next.device == null && next.host != null) {
            List<Page> victims = plan(next, page);
            if (victims != null) {
                inFlight = prefetcher().submit(() -> move(victims, next));
            }
        }
        return state.format.open(page.device, like);
    }

    @Override
    public void release(String param, int index, Moments working) {
        ParamState state = params.get(param);
        state.format.close(state.pages[index].device, working);
    }

    @Override
    public PagingStats stats() {
        awaitPrefetch();
        long hostBytes = 0;
        for (ParamState state : params.values()) {
            for (Page page : state.pages) {
                hostBytes += page.device == null && page.host != null ? page.bytes : 0;
            }
        }
        return new PagingStats(budget, deviceBytes, hostBytes, pagedIn, pagedOut, maxDeviceBytes);
    }

    @Override
    public Map<String, StateTensor> export() {
        awaitPrefetch();
        Map<String, StateTensor> out = new LinkedHashMap<>();
        params.forEach((param, state) -> {
            out.put(param + "." + StateCheckpoint.STEP,
                    new StateTensor(new Shape(), new float[] {state.step}));
            List<ByteBuffer> pages = new ArrayList<>(state.pages.length);
            for (Page page : state.pages) {
                pages.add(hostBytes(page));
            }
            PageTensors.export(param, state.format, state.shape, state.layout, pages, out);
        });
        return out;
    }

    @Override
    public void load(Map<String, StateTensor> saved) {
        awaitPrefetch();
        Map<String, ParamState> loaded = new LinkedHashMap<>();
        StateCheckpoint.parse(saved).forEach((param, entry) -> {
            Shape shape = entry.shape(param);
            PageFormat expected = formatFor(shape.size());
            if (expected != entry.format()) {
                throw new IllegalArgumentException(
                        "optimizer state '" + param + "." + entry.format().suffixes().get(0)
                                + "' is " + formatName(entry.format()) + " but " + optim.key()
                                + " keeps " + formatName(expected) + " state for a tensor of "
                                + shape.size() + " elements; resume with the optim that wrote it");
            }
            ParamState state = new ParamState(entry.format(), shape, pageBytes);
            state.step = entry.step();
            List<ByteBuffer> bytes = PageTensors.pages(entry.format(), entry.tensors(), state.layout);
            for (int i = 0; i < state.pages.length; i++) {
                ByteBuffer host = hostPages.allocate(Math.toIntExact(state.pages[i].bytes));
                host.put(bytes.get(i).duplicate().clear()).clear();
                state.pages[i].host = host;
                state.pages[i].hostCurrent = true;
            }
            loaded.put(param, state);
        });
        freeDevice();
        freeHost();
        params = loaded;
    }

    @Override
    public void close() {
        awaitPrefetch();
        if (prefetcher != null) {
            prefetcher.shutdown();
            prefetcher = null;
        }
        freeDevice();
        freeHost();
        params = new LinkedHashMap<>();
        hostPages.close();
    }

    private void freeHost() {
        for (ParamState state : params.values()) {
            for (Page page : state.pages) {
                if (page.host != null) {
                    hostPages.free(page.host);
                    page.host = null;
                }
            }
        }
    }

    private PageFormat formatFor(long size) {
        return optim.eightBit() && size >= Blockwise8BitFormat.MIN_8BIT_SIZE
                ? Blockwise8BitFormat.INSTANCE
                : Float32Format.INSTANCE;
    }

    private static String formatName(PageFormat format) {
        return format == Float32Format.INSTANCE ? "float32" : "8-bit";
    }

    /**
     * Books {@code target} onto the device, choosing least recently used pages other than {@code
     * keep} to evict until it fits, and returns them (to be moved by {@link #move}); {@code null}
     * when it cannot fit beside {@code keep}. All bookkeeping happens here, on the caller's thread.
     */
    private List<Page> plan(Page target, Page keep) {
        List<Page> victims = new ArrayList<>();
        long freed = 0;
        for (Page page : resident) {
            if (deviceBytes - freed + target.bytes <= budget) {
                break;
            }
            if (page != keep) {
                victims.add(page);
                freed += page.bytes;
            }
        }
        if (deviceBytes - freed + target.bytes > budget) {
            if (keep == null) {
                throw new IllegalStateException(
                        "an optimizer state page of " + target.bytes
                                + " bytes does not fit the device budget of " + budget + " bytes");
            }
            return null;
        }
        for (Page victim : victims) {
            resident.remove(victim);
            deviceBytes -= victim.bytes;
            if (!victim.hostCurrent) {
                pagedOut += victim.bytes;
            }
        }
        if (target.host != null) {
            pagedIn += target.bytes;
        }
        resident.add(target);
        deviceBytes += target.bytes;
        maxDeviceBytes = Math.max(maxDeviceBytes, deviceBytes);
        return victims;
    }

    /** Copies the victims out (those changed since their host copy) and frees them, then copies {@code target} in. */
    private void move(List<Page> victims, Page target) {
        for (Page victim : victims) {
            if (!victim.hostCurrent) {
                if (victim.host == null) {
                    victim.host = hostPages.allocate(Math.toIntExact(victim.bytes));
                }
                ByteBuffer host = victim.host.clear();
                for (NDArray part : victim.device) {
                    hostPages.download(part, host);
                }
                victim.hostCurrent = true;
            }
            for (NDArray part : victim.device) {
                part.close();
            }
            victim.device = null;
        }
        NDArray[] arrays = new NDArray[target.parts.size()];
        ByteBuffer host = target.host == null ? null : target.host.clear();
        for (int i = 0; i < arrays.length; i++) {
            PagePart part = target.parts.get(i);
            arrays[i] = host == null ? DeviceBytes.zeros(manager, part)
                    : hostPages.upload(manager, new Shape(part.count()), part.type(), host);
            if (host != null) {
                host.position(host.position() + Math.toIntExact(part.bytes()));
            }
            // state outlives the step: keep it out of any NDScope the caller has open
            NDScope.unregister(arrays[i]);
        }
        target.device = arrays;
    }

    private Page next(String param, int index) {
        ParamState state = params.get(param);
        if (index + 1 < state.pages.length) {
            return state.pages[index + 1];
        }
        Integer position = stepOrder.get(param);
        if (position == null || position + 1 >= stepParams.size()) {
            return null;
        }
        ParamState following = params.get(stepParams.get(position + 1));
        return following == null ? null : following.pages[0];
    }

    private ByteBuffer hostBytes(Page page) {
        if (page.device == null) {
            return page.host != null ? page.host.duplicate().clear() : ByteBuffer.allocate(Math.toIntExact(page.bytes));
        }
        ByteBuffer copy = ByteBuffer.allocate(Math.toIntExact(page.bytes));
        for (NDArray part : page.device) {
            DeviceBytes.download(part, copy);
        }
        return copy.clear();
    }

    private void awaitPrefetch() {
        if (inFlight == null) {
            return;
        }
        try {
            inFlight.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while prefetching optimizer state", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("prefetching optimizer state failed", e.getCause());
        } finally {
            inFlight = null;
        }
    }

    private ExecutorService prefetcher() {
        if (prefetcher == null) {
            prefetcher = Executors.newSingleThreadExecutor(task -> {
                Thread thread = new Thread(task, "qlora4j-optim-prefetch");
                thread.setDaemon(true);
                return thread;
            });
        }
        return prefetcher;
    }

    private void freeDevice() {
        if (manager != null) {
            manager.close();
            manager = null;
        }
        resident.clear();
        deviceBytes = 0;
        for (ParamState state : params.values()) {
            for (Page page : state.pages) {
                page.device = null;
            }
        }
    }

    /**
     * The default budget: unlimited on the CPU; on a GPU what it reports free at the first step (after
     * the model and the first step's activations are allocated) by {@link HostPages#deviceMemory}
     * ({@code cudaMemGetInfo}), less {@link DeviceBudget}'s margin.
     */
    private long deviceDefault(Device device) {
        if (!device.isGpu()) {
            return UNLIMITED;
        }
        long[] freeTotal = hostPages.deviceMemory(device);
        return DeviceBudget.of(freeTotal[0], freeTotal[1], pageBytes);
    }
}
