package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.fail;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One boot of the test guest under QEMU (TCG): the kit's kernel and initramfs plus a per-test
 * {@code /test.sh}, extra QEMU arguments (disks, vhost-user devices), and a hard timeout that fails
 * with the console log instead of hanging. The guest's /init prints the script's output between
 * STRATA-TEST-BEGIN and STRATA-TEST-END rc=N, then powers off.
 */
final class Guest {
    private final GuestKit kit;
    private final Path workDir;
    private final String script;
    private final List<String> qemuArgs = new ArrayList<>();
    private int memoryMiB = 1024;
    private int cpus = 2;
    private long timeoutSeconds = 300;
    private boolean sharedMemory;
    private final java.util.Map<String, String> files = new java.util.LinkedHashMap<>();
    private java.util.function.Consumer<Path> whileRunning;

    Guest(GuestKit kit, Path workDir, String script) {
        this.kit = kit;
        this.workDir = workDir;
        this.script = script;
    }

    Guest memory(int mib) {
        this.memoryMiB = mib;
        return this;
    }

    Guest cpus(int n) {
        this.cpus = n;
        return this;
    }

    Guest timeout(long seconds) {
        this.timeoutSeconds = seconds;
        return this;
    }

    /** Backs guest RAM with a shared memfd: vhost-user back-ends map it (else the guest just hangs). */
    Guest sharedMemory() {
        this.sharedMemory = true;
        return this;
    }

    /** An extra file in the guest's root (e.g. an md5 list for md5sum -c). */
    Guest file(String name, String content) {
        files.put(name, content);
        return this;
    }

    /** Runs on a separate thread while the guest runs, given the console log's path (to react to markers). */
    Guest whileRunning(java.util.function.Consumer<Path> action) {
        this.whileRunning = action;
        return this;
    }

    Guest args(String... args) {
        qemuArgs.addAll(List.of(args));
        return this;
    }

    /** A read-only raw virtio disk (appears as /dev/vdX in attach order). */
    Guest disk(Path image) {
        return args("-drive", "file=" + image + ",if=virtio,format=raw,readonly=on");
    }

    /** The result of a boot: the script's exit code and output, and the whole console. */
    record Result(int exitCode, String output, String console) {
    }

    Result boot() throws IOException, InterruptedException {
        Path initrd = workDir.resolve("initrd.img");
        Path extra = Files.createDirectories(workDir.resolve("initrd-extra"));
        Path test = extra.resolve("test.sh");
        Files.writeString(test, "#!/bin/sh\n" + script);
        Files.setPosixFilePermissions(test, PosixFilePermissions.fromString("rwxr-xr-x"));
        for (var f : files.entrySet()) {
            Files.writeString(extra.resolve(f.getKey()), f.getValue());
        }
        // Linux unpacks concatenated cpio archives in order: base image, then this test's files.
        Path cpio = workDir.resolve("extra.cpio");
        HostTools.run(List.of("sh", "-c", "cd '" + extra + "' && find . | cpio -o -H newc --quiet > '" + cpio + "'"));
        // An uncompressed archive that follows a compressed one must start 4-byte aligned, or the
        // kernel takes it for compressed data ("invalid magic"); the zeros in between are skipped
        // (init/initramfs.c, unpack_to_rootfs).
        byte[] base = Files.readAllBytes(kit.initramfs);
        byte[] add = Files.readAllBytes(cpio);
        int padded = (base.length + 3) & ~3;
        byte[] both = new byte[padded + add.length];
        System.arraycopy(base, 0, both, 0, base.length);
        System.arraycopy(add, 0, both, padded, add.length);
        Files.write(initrd, both);

        List<String> cmd = new ArrayList<>(List.of(kit.qemu.toString(), "-accel", "tcg", "-machine", "q35",
                "-cpu", "max", "-smp", String.valueOf(cpus), "-m", memoryMiB + "M",
                "-kernel", kit.kernel.toString(), "-initrd", initrd.toString(),
                // no_timer_check: on a loaded host a TCG guest's timer can miss the kernel's IO-APIC
                // check, which then panics ("IO-APIC + timer doesn't work"); seen here with 6 builds on
                // 2 cores. The check exists for broken chipsets, not for QEMU's.
                "-append", "console=ttyS0 panic=-1 loglevel=4 no_timer_check",
                "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"));
        if (sharedMemory) {
            cmd.addAll(List.of("-object", "memory-backend-memfd,id=mem,size=" + memoryMiB + "M,share=on",
                    "-numa", "node,memdev=mem"));
        }
        cmd.addAll(qemuArgs);
        Path console = workDir.resolve("console.log");
        String log = null;
        // One budget for the whole boot, a retry included: the caller's timeout is what it waits at most.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        for (int attempt = 1; log == null; attempt++) {
            // Not with a side action: it watches this console for the test's progress, and a second
            // one would act on the retry's as well.
            boolean mayRetry = attempt == 1 && whileRunning == null;
            log = run(cmd, console, deadline, mayRetry);
            if (log == null) {
                System.err.println("guest: its kernel stalled before the test began (TCG timer, RCU stall); booting it again");
            } else if (mayRetry && exitValue != 0 && !log.contains("STRATA-TEST-BEGIN")) {
                // QEMU itself stopped before the guest ran anything of the test: once, an assertion in
                // its MSI-X emulation while SeaBIOS probed the disks (hw/pci/msix.c, exit 134), in 1
                // of ~40 boots here. The emulator, not what the test checks: one more boot.
                System.err.println("guest: QEMU stopped (exit " + exitValue + ") before the test began; booting it again; console:\n"
                        + tail(log));
                log = null;
            }
        }
        Matcher end = Pattern.compile("STRATA-TEST-END rc=(\\d+)").matcher(log);
        if (!end.find()) {
            fail("guest stopped without finishing its test (QEMU exit " + exitValue + "); console:\n" + tail(log));
        }
        int begin = log.indexOf("STRATA-TEST-BEGIN");
        String out = begin < 0 ? "" : log.substring(begin + "STRATA-TEST-BEGIN".length(), end.start());
        return new Result(Integer.parseInt(end.group(1)), out.replace("\r", ""), log);
    }

    /** What a TCG guest's kernel prints when a CPU's timer stops firing (seen rarely here with -smp 4). */
    private static final String RCU_STALL = "rcu_preempt detected stalls";

    /**
     * Runs QEMU until it exits or the timeout passes; returns the console. With {@code mayRetry}, a
     * guest whose kernel reports an RCU stall before the test began is stopped at once and null is
     * returned: a boot that would have hung until the timeout (600 s) for a reason in the emulator,
     * not in what the test checks (no test traffic has started), gets one more try.
     */
    private String run(List<String> cmd, Path console, long deadline, boolean mayRetry) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(console.toFile())
                .redirectInput(ProcessBuilder.Redirect.PIPE).start();
        Thread side = null;
        if (whileRunning != null) {
            side = new Thread(() -> whileRunning.accept(console), "guest-side");
            side.setDaemon(true);
            side.start();
        }
        boolean done = false;
        boolean stalled = false;
        try {
            while (!done && !stalled && System.nanoTime() < deadline) {
                done = p.waitFor(Math.min(2, Math.max(1, TimeUnit.NANOSECONDS.toSeconds(deadline - System.nanoTime()))), TimeUnit.SECONDS);
                if (!done && mayRetry) {
                    String sofar = Files.readString(console, StandardCharsets.ISO_8859_1);
                    stalled = sofar.contains(RCU_STALL) && !sofar.contains("STRATA-TEST-BEGIN");
                }
            }
        } finally {
            // Also when JUnit's timeout interrupts this thread: no QEMU outlives its test.
            if (!done) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
        if (side != null) {
            side.join(30_000);
        }
        String log = Files.readString(console, StandardCharsets.ISO_8859_1);
        if (stalled) {
            return null;
        }
        if (!done) {
            fail("guest timed out after " + timeoutSeconds + " s; console:\n" + tail(log));
        }
        exitValue = p.exitValue();
        return log;
    }

    /** The last QEMU's exit status. */
    private int exitValue;

    static String tail(String log) {
        return log.length() > 6000 ? "..." + log.substring(log.length() - 6000) : log;
    }
}
