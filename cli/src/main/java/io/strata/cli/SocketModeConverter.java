package io.strata.cli;

import picocli.CommandLine;

/** Parses {@code --socket-mode}: octal permission bits such as 600, 0660 or 0o666. */
final class SocketModeConverter implements CommandLine.ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
        String v = value.startsWith("0o") ? value.substring(2) : value;
        try {
            int mode = Integer.parseInt(v, 8);
            if (v.isEmpty() || mode < 0 || mode > 0777) {
                throw new NumberFormatException();
            }
            return mode;
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException("not an octal mode 0..0777: '" + value + "' (example: 0660)");
        }
    }
}
