#!/usr/bin/env python3
"""Prints the seven unrolled BLAKE3 rounds that io.strata.core.digest.Blake3 and Blake3Lanes inline.

BLAKE3 spec section 2.2: a round is G on the four columns (v0,v4,v8,v12)..(v3,v7,v11,v15), then on
the four diagonals (v0,v5,v10,v15), (v1,v6,v11,v12), (v2,v7,v8,v13), (v3,v4,v9,v14); G of column or
diagonal i takes message words 2i and 2i+1 of the round's schedule; the schedule of round r+1 is
round r's permuted by MSG_PERMUTATION. Unrolling applies that permutation at generation time, so the
Java code moves no message words between rounds.

usage: scripts/blake3-rounds.py [scalar|vector] > rounds.txt   (then paste into the Java class)
"""
import sys

PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
QUARTERS = [(0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
            (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)]


def schedules():
    s = list(range(16))
    for _ in range(7):
        yield s
        s = [s[p] for p in PERMUTATION]


def scalar_g(a, b, c, d, x, y):
    rot = "Integer.rotateRight"
    return [f"v{a} += v{b} + m{x}; v{d} = {rot}(v{d} ^ v{a}, 16); v{c} += v{d}; v{b} = {rot}(v{b} ^ v{c}, 12);",
            f"v{a} += v{b} + m{y}; v{d} = {rot}(v{d} ^ v{a}, 8); v{c} += v{d}; v{b} = {rot}(v{b} ^ v{c}, 7);"]


def vector_g(a, b, c, d, x, y):
    def half(m, r1, r2):
        return [f"v{a} = v{a}.add(v{b}).add(m{m});",
                f"v{d} = v{d}.lanewise(XOR, v{a}).lanewise(ROR, {r1});",
                f"v{c} = v{c}.add(v{d});",
                f"v{b} = v{b}.lanewise(XOR, v{c}).lanewise(ROR, {r2});"]
    return half(x, 16, 12) + half(y, 8, 7)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "scalar"
    g = scalar_g if mode == "scalar" else vector_g
    for r, s in enumerate(schedules()):
        print(f"// round {r + 1}: schedule {s}")
        for i, (a, b, c, d) in enumerate(QUARTERS):
            for line in g(a, b, c, d, s[2 * i], s[2 * i + 1]):
                print(line)


if __name__ == "__main__":
    main()
