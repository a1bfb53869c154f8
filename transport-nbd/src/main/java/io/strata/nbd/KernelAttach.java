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
    /** The kernel block layer's unit: a device size must be a multiple of it. */
    private static final int SECTOR = 512;
    /** The block size asked for when the size allows: one page, what EROFS reads in. */
    private static final int PAGE_BLOCK = 4096;
    private final LibC libc = Native.libc();
    private final List<SocketChannel> kernelEnds = new ArrayList<>();
    private final List<Thread> servers = new ArrayList<>();
    private final CountDownLatch disconnected = new CountDownLatch(1);
    private volatile boolean detaching;
    private Thread doIt;

    private KernelAttach(Path device, int fd) {
        this.device = device;
        this.fd = fd;
    }

    /**
     * Attaches {@code export} to {@code device} over {@code connections} sockets and returns once the
     * kernel is serving it (the block device is usable).
     */
    public static KernelAttach attach(Path device, Export export, NbdServer server, int connections, int timeoutSeconds)
            throws IOException {
        long size = export.device().size();
        if (size % SECTOR != 0) {
            throw new IOException("the kernel needs a size in 512-byte sectors; " + export.name() + " has " + size + " bytes");
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
        // A device left configured by a crashed server refuses new sockets: clear it first.
        libc.ioctl(fd, KernelNbd.CLEAR_SOCK, 0);
        Native.check(libc.ioctl(fd, KernelNbd.SET_BLKSIZE, size % PAGE_BLOCK == 0 ? PAGE_BLOCK : SECTOR), "NBD_SET_BLKSIZE");
        if (size % PAGE_BLOCK == 0) {
            Native.check(libc.ioctl(fd, KernelNbd.SET_SIZE_BLOCKS, size / PAGE_BLOCK), "NBD_SET_SIZE_BLOCKS");
        } else {
            Native.check(libc.ioctl(fd, KernelNbd.SET_SIZE, size), "NBD_SET_SIZE");
        }
        Native.check(libc.ioctl(fd, KernelNbd.SET_TIMEOUT, timeoutSeconds), "NBD_SET_TIMEOUT");
        // The kernel refuses a second socket unless the export says CAN_MULTI_CONN.
        int flags = NbdProtocol.TFLAG_HAS_FLAGS | NbdProtocol.TFLAG_READ_ONLY | NbdProtocol.TFLAG_SEND_FLUSH
                | NbdProtocol.TFLAG_CAN_MULTI_CONN;
        Native.check(libc.ioctl(fd, KernelNbd.SET_FLAGS, flags), "NBD_SET_FLAGS");

        Path dir = Files.createTempDirectory("strata-attach");
        Path sock = dir.resolve("pair.sock");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(sock));
            for (int i = 0; i < connections; i++) {
                SocketChannel kernelEnd = SocketChannel.open(UnixDomainSocketAddress.of(sock));
                SocketChannel ours = listener.accept();
                kernelEnds.add(kernelEnd);
                Native.check(libc.ioctl(fd, KernelNbd.SET_SOCK, Native.fdOf(kernelEnd)), "NBD_SET_SOCK");
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
        // NBD_DO_IT blocks for as long as the device is connected.
        doIt = new Thread(() -> {
            int r = libc.ioctl(fd, KernelNbd.DO_IT, 0);
            int err = r < 0 ? Native.errno() : 0;
            if (r < 0 && !detaching) {
                LOG.warn("nbd {}: NBD_DO_IT ended with errno {}", device, err);
            }
            disconnected.countDown();
        }, "nbd-do-it");
        doIt.setDaemon(true);
        doIt.start();
        LOG.info("nbd {}: attached {} ({} bytes) over {} connection(s), timeout {} s", device,
                export.name().isEmpty() ? "the default export" : "'" + export.name() + "'", size, connections, timeoutSeconds);
    }

    /** Blocks until the kernel drops the device (detach, or someone ran nbd-client -d). */
    public void awaitDisconnect() throws InterruptedException {
        disconnected.await();
    }

    /** Disconnects cleanly: the kernel sends NBD_CMD_DISC, DO_IT returns, the device is free again. */
    @Override
    public void close() throws IOException {
        detaching = true;
        if (doIt != null) {
            libc.ioctl(fd, KernelNbd.DISCONNECT, 0);
            try {
                if (!disconnected.await(30, java.util.concurrent.TimeUnit.SECONDS)) {
                    LOG.warn("nbd {}: the kernel did not disconnect within 30 s", device);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        libc.ioctl(fd, KernelNbd.CLEAR_SOCK, 0);
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
        LOG.info("nbd {}: detached", device);
    }
}
