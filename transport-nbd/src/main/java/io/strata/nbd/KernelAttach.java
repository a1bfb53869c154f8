package io.strata.nbd;

import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Drives {@code /dev/nbdN} directly (the seed's NbdService): configure the kernel's nbd driver with
 * ioctls, give it one end of a connected socket pair per connection, and serve the other ends with
 * the same transmission code as the network server (the kernel skips the handshake and uses simple
 * replies, keeping many requests in flight per socket and accepting replies in any order).
 *
 * <p>The pairs are JDK unix-domain sockets connected through a private listening socket, so Strata's
 * end is an ordinary JDK channel that {@code transferTo} feeds with sendfile.
 */
public final class KernelAttach implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(KernelAttach.class);

    private final Path device;
    private final int fd;
    /**
     * The kernel block layer's unit: a device size must be a multiple of it. Also the logical block
     * size asked for, as qemu-nbd and nbd-client do: a larger one (4096) keeps file systems with
     * smaller blocks (ext4 or EROFS made with 1 KiB blocks, FAT) from mounting a --raw image, and
     * reads are page-sized whatever it is.
     */
    private static final int SECTOR = 512;
    /** How long NBD_DO_IT may take to make the device live before attach gives up. */
    private static final long START_TIMEOUT_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(20);
    private final LibC libc = Native.libc();
    private final List<SocketChannel> kernelEnds = new ArrayList<>();
    private final List<Thread> servers = new ArrayList<>();
    private final CountDownLatch disconnected = new CountDownLatch(1);
    private volatile boolean detaching;
    /** What NBD_DO_IT returned: 0 for a disconnect someone asked for, -errno when the kernel dropped the device. */
    private volatile int doItResult;
    private Thread doIt;
    /** Sockets the kernel took (NBD_SET_SOCK): the configuration is ours to clear on close. */
    private int socketsGiven;

    private KernelAttach(Path device, int fd) {
        this.device = device;
        this.fd = fd;
    }

    /**
     * What NBD_SET_TIMEOUT is given for "no request timeout". With one socket 0 does it: the kernel
     * then only warns and waits (nbd_xmit_timeout: "Possible stuck request"). With more than one it
     * does not: the queue keeps its 30 s default, and a request slower than that (a cold chunk from a
     * slow registry) shuts its socket down for good and is requeued on another; after as many as
     * there are sockets the device fails every read. So several sockets get a timeout of 23 days
     * instead (in jiffies it must fit the kernel's 32 bits at HZ=1000).
     */
    static final int NO_TIMEOUT_WITH_SEVERAL_SOCKETS = 2_000_000;

    static int kernelTimeout(int timeoutSeconds, int connections) {
        return timeoutSeconds == 0 && connections > 1 ? NO_TIMEOUT_WITH_SEVERAL_SOCKETS : timeoutSeconds;
    }

    /**
     * Attaches {@code export} to {@code device} over {@code connections} sockets and returns once the
     * kernel is serving it (the block device has its size; NBD_DO_IT is running). A device another
     * process serves is refused, untouched. {@code timeoutSeconds} 0: no request timeout (the kernel
     * waits, as with qemu-nbd; with one, a request slower than it kills the device for good: the
     * ioctl interface cannot reconnect).
     */
    public static KernelAttach attach(Path device, Export export, NbdServer server, int connections, int timeoutSeconds)
            throws IOException {
        long size = export.device().size();
        if (size % SECTOR != 0) {
            throw new IOException("the kernel needs a size in whole 512-byte sectors; "
                    + (export.name().isEmpty() ? "the image" : "export '" + export.name() + "'") + " has " + size + " bytes");
        }
        LibC libc = Native.libc();
        int fd = Native.check(libc.open(device.toString(), LibC.O_RDWR | LibC.O_CLOEXEC), "open " + device);
        KernelAttach a = new KernelAttach(device, fd);
        try {
            a.configure(export, server, connections, timeoutSeconds);
        } catch (IOException | RuntimeException e) {
            a.close();
            throw e;
        }
        return a;
    }

    private void configure(Export export, NbdServer server, int connections, int timeoutSeconds) throws IOException {
        long size = export.device().size();
        // No NBD_CLEAR_SOCK first: on a device in use it shuts the other server's sockets down and
        // fails its requests (nbd_clear_sock), even one attached through netlink. A device whose
        // server died is already clear: the kernel releases its config when the last fd closes.
        Path sysfs = NbdDeviceNode.sysfs(device);
        java.util.OptionalLong owner = NbdDeviceNode.servedBy(sysfs);
        if (owner.isPresent()) {
            long pid = owner.getAsLong();
            // The kernel keeps the pid of the thread that ran NBD_DO_IT until the last opener lets go.
            throw new IOException(device + " is in use: " + (Files.exists(Path.of("/proc", Long.toString(pid)))
                    ? "process " + pid + " serves it (detach that first)"
                    : "held open (mounted?) since process " + pid + ", which served it, ended: unmount it first"));
        }
        // The sockets first: NBD_SET_SOCK claims the device for this process (the kernel's
        // task_setup; another one gets EBUSY), so the settings below never touch someone else's.
        Path dir = Files.createTempDirectory("strata-attach");
        Path sock = dir.resolve("pair.sock");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(sock));
            for (int i = 0; i < connections; i++) {
                SocketChannel kernelEnd = SocketChannel.open(UnixDomainSocketAddress.of(sock));
                SocketChannel ours = listener.accept();
                kernelEnds.add(kernelEnd);
                if (libc.ioctl(fd, KernelNbd.SET_SOCK, Native.fdOf(kernelEnd)) < 0) {
                    int err = Native.errno();
                    ours.close();
                    throw new IOException(err == LibC.EBUSY ? device + " is in use: another process is setting it up"
                            : "NBD_SET_SOCK failed: " + Native.errnoText(err));
                }
                socketsGiven++;
                String peer = "kernel " + device + " socket " + i;
                Thread t = new Thread(() -> server.serveTransmission(ours, peer, export), "nbd-kernel-" + i);
                t.setDaemon(true);
                t.start();
                servers.add(t);
            }
        } finally {
            Files.deleteIfExists(sock);
            Files.deleteIfExists(dir);
        }
        Native.check(libc.ioctl(fd, KernelNbd.SET_BLKSIZE, SECTOR), "NBD_SET_BLKSIZE");
        Native.check(libc.ioctl(fd, KernelNbd.SET_SIZE, size), "NBD_SET_SIZE");
        Native.check(libc.ioctl(fd, KernelNbd.SET_TIMEOUT, kernelTimeout(timeoutSeconds, connections)), "NBD_SET_TIMEOUT");
        // NBD_DO_IT refuses more than one socket unless the export says CAN_MULTI_CONN.
        int flags = NbdProtocol.TFLAG_HAS_FLAGS | NbdProtocol.TFLAG_READ_ONLY | NbdProtocol.TFLAG_SEND_FLUSH
                | NbdProtocol.TFLAG_CAN_MULTI_CONN;
        Native.check(libc.ioctl(fd, KernelNbd.SET_FLAGS, flags), "NBD_SET_FLAGS");
        // NBD_DO_IT blocks for as long as the device is connected.
        doIt = new Thread(() -> {
            int r = libc.ioctl(fd, KernelNbd.DO_IT, 0);
            doItResult = r < 0 ? -Native.errno() : 0;
            disconnected.countDown();
        }, "nbd-do-it");
        doIt.setDaemon(true);
        doIt.start();
        awaitLive(sysfs, size);
        LOG.info("nbd {}: attached {} ({} bytes) over {} connection(s), {}", device,
                export.name().isEmpty() ? "the default export" : "'" + export.name() + "'", size, connections,
                timeoutSeconds == 0 ? "no request timeout" : "request timeout " + timeoutSeconds + " s");
    }

    /**
     * Waits until NBD_DO_IT has made the device live (the kernel applies the size and creates the
     * pid file in nbd_start_device) or has failed (EBUSY: someone else started it; EINVAL: ...).
     */
    private void awaitLive(Path sysfs, long size) throws IOException {
        if (!Files.isDirectory(sysfs)) {
            LOG.debug("nbd {}: no {}: not waiting for the device to come up", device, sysfs);
            return;
        }
        long deadline = System.nanoTime() + START_TIMEOUT_NANOS;
        try {
            while (!disconnected.await(10, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                if (NbdDeviceNode.servedBy(sysfs).isPresent() && NbdDeviceNode.sectors(sysfs) * SECTOR == size) {
                    return;
                }
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException(device + ": the kernel did not start serving it within "
                            + java.util.concurrent.TimeUnit.NANOSECONDS.toSeconds(START_TIMEOUT_NANOS) + " s");
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while " + device + " came up");
        }
        int err = -doItResult;
        throw new IOException(err == LibC.EBUSY ? device + " is in use: another process started serving it"
                : "NBD_DO_IT failed: " + Native.errnoText(err));
    }

    /**
     * Blocks until the kernel drops the device: a detach ({@link #close}), someone else's disconnect
     * (nbd-client -d), a socket gone, or a request timeout. Returns what the kernel reported when
     * NBD_DO_IT failed (a timeout: ETIMEDOUT), else null: the kernel reports nothing else as an error
     * (nbd_start_device_ioctl ignores socket errors once a disconnect is under way).
     */
    public String awaitDisconnect() throws InterruptedException {
        disconnected.await();
        int r = doItResult;
        return r == 0 || detaching ? null : "NBD_DO_IT ended with " + Native.errnoText(-r);
    }

    /** Disconnects cleanly: the kernel sends NBD_CMD_DISC, DO_IT returns, the device is free again. */
    @Override
    public void close() throws IOException {
        detaching = true;
        if (doIt != null && disconnected.getCount() > 0) {
            // Only while our NBD_DO_IT runs: after it failed, the device may be someone else's.
            libc.ioctl(fd, KernelNbd.DISCONNECT, 0);
            try {
                if (!disconnected.await(30, java.util.concurrent.TimeUnit.SECONDS)) {
                    LOG.warn("nbd {}: the kernel did not disconnect within 30 s", device);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (socketsGiven > 0) {
            // Only a configuration of ours: on a device someone else set up, this would end theirs.
            libc.ioctl(fd, KernelNbd.CLEAR_SOCK, 0);
        }
        for (SocketChannel c : kernelEnds) {
            c.close();
        }
        for (Thread t : servers) {
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        libc.close(fd);
        if (socketsGiven > 0) {
            LOG.info("nbd {}: detached", device);
        }
    }
}
