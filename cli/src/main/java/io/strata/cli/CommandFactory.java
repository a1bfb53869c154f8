package io.strata.cli;

import java.lang.reflect.Constructor;
import picocli.CommandLine;

/**
 * Makes the objects picocli asks for (commands, converters, mixins) with their no-argument
 * constructors, as picocli's own factory does, without that factory's start-up cost: its class
 * initialiser looks for Groovy's {@code groovy.lang.Closure}, and a class that is not there makes the
 * class loader open and search every jar on the class path (about 55 for Strata) before it gives up
 * (docs/benchmarks.md, "Start-up and idle footprint"). Interfaces (the collections of multi-value
 * options) still go to picocli's factory, which knows which class each one gets.
 */
final class CommandFactory implements CommandLine.IFactory {
    static final CommandFactory INSTANCE = new CommandFactory();

    private CommandFactory() {
    }

    @Override
    public <K> K create(Class<K> cls) throws Exception {
        if (cls.isInterface()) {
            return CommandLine.defaultFactory().create(cls);
        }
        Constructor<K> constructor = cls.getDeclaredConstructor();
        constructor.setAccessible(true);
        return constructor.newInstance();
    }
}
