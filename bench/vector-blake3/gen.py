# Generates VecBlake3.java (rounds unrolled with the message schedule applied when generated)
PERM = [2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8]
SCHED = []
s = list(range(16))
for r in range(7):
    SCHED.append(s)
    s = [s[PERM[i]] for i in range(16)]
QUARTERS = [(0,4,8,12),(1,5,9,13),(2,6,10,14),(3,7,11,15),(0,5,10,15),(1,6,11,12),(2,7,8,13),(3,4,9,14)]

def ror(var, src_xor, n, shifts):
    if shifts:
        return (f"        t = {var}.lanewise(XOR, {src_xor}); {var} = t.lanewise(LSHR, {n}).or(t.lanewise(LSHL, {32-n}));\n")
    return f"        {var} = {var}.lanewise(XOR, {src_xor}).lanewise(ROR, {n});\n"

def g(a,b,c,d,x,y,shifts):
    o = ""
    o += f"        {a} = {a}.add({b}).add({x});\n"
    o += ror(d, a, 16, shifts)
    o += f"        {c} = {c}.add({d});\n"
    o += ror(b, c, 12, shifts)
    o += f"        {a} = {a}.add({b}).add({y});\n"
    o += ror(d, a, 8, shifts)
    o += f"        {c} = {c}.add({d});\n"
    o += ror(b, c, 7, shifts)
    return o

def compress(name, unrolled, shifts):
    o = f"""
    /** One compression of 16 independent blocks, one per lane. m: word w of lane l at m[mOff+16w+l];
     *  h: chaining value word i at h[hOff+16i+l]; output cv word i to out[outOff+i*outStride+l]. */
    static void {name}(int[] m, int mOff, int[] h, int hOff, int ctrBase, int ctrMask, int flags,
                       int[] out, int outOff, int outStride) {{
"""
    for w in range(16):
        o += f"        IntVector m{w} = IntVector.fromArray(S, m, mOff + {16*w});\n"
    for i in range(8):
        o += f"        IntVector v{i} = IntVector.fromArray(S, h, hOff + {16*i});\n"
    for i in range(4):
        o += f"        IntVector v{8+i} = IntVector.broadcast(S, IV{i});\n"
    o += "        IntVector v12 = IOTA.lanewise(AND, ctrMask).add(ctrBase);\n"
    o += "        IntVector v13 = IntVector.zero(S);\n"
    o += "        IntVector v14 = IntVector.broadcast(S, 64);\n"
    o += "        IntVector v15 = IntVector.broadcast(S, flags);\n"
    if shifts:
        o += "        IntVector t;\n"
    if unrolled:
        for r in range(7):
            o += f"        // round {r+1}\n"
            sc = SCHED[r]
            for gi,(a,b,c,d) in enumerate(QUARTERS):
                o += g(f"v{a}",f"v{b}",f"v{c}",f"v{d}",f"m{sc[2*gi]}",f"m{sc[2*gi+1]}",shifts)
    else:
        o += "        for (int r = 0; ; r++) {\n"
        for gi,(a,b,c,d) in enumerate(QUARTERS):
            o += g(f"v{a}",f"v{b}",f"v{c}",f"v{d}",f"m{2*gi}",f"m{2*gi+1}",shifts).replace("\n        ","\n            ").replace("        ","            ",1)
        o += "            if (r == 6) break;\n"
        o += "            IntVector " + ", ".join(f"p{i} = m{PERM[i]}" for i in range(16)) + ";\n"
        o += "            " + " ".join(f"m{i} = p{i};" for i in range(16)) + "\n"
        o += "        }\n"
    for i in range(8):
        o += f"        v{i}.lanewise(XOR, v{i+8}).intoArray(out, outOff + {i} * outStride);\n"
    o += "    }\n"
    return o

def compress_mem(name):
    o = f"""
    /** As compressLooped, but each round loads its message words from m by the schedule table (no message phis). */
    static void {name}(int[] m, int mOff, int[] h, int hOff, int ctrBase, int ctrMask, int flags,
                       int[] out, int outOff, int outStride) {{
"""
    for i in range(8):
        o += f"        IntVector v{i} = IntVector.fromArray(S, h, hOff + {16*i});\n"
    for i in range(4):
        o += f"        IntVector v{8+i} = IntVector.broadcast(S, IV{i});\n"
    o += "        IntVector v12 = IOTA.lanewise(AND, ctrMask).add(ctrBase);\n"
    o += "        IntVector v13 = IntVector.zero(S);\n"
    o += "        IntVector v14 = IntVector.broadcast(S, 64);\n"
    o += "        IntVector v15 = IntVector.broadcast(S, flags);\n"
    o += "        int[] sc = SCHED16;\n"
    o += "        for (int r = 0; r < 112; r += 16) {\n"
    for gi,(a,b,c,d) in enumerate(QUARTERS):
        x = f"IntVector.fromArray(S, m, mOff + sc[r + {2*gi}])"
        y = f"IntVector.fromArray(S, m, mOff + sc[r + {2*gi+1}])"
        o += g(f"v{a}",f"v{b}",f"v{c}",f"v{d}",x,y,False).replace("\n        ","\n            ").replace("        ","            ",1)
    o += "        }\n"
    for i in range(8):
        o += f"        v{i}.lanewise(XOR, v{i+8}).intoArray(out, outOff + {i} * outStride);\n"
    o += "    }\n"
    o += "    static final int[] SCHED16 = {" + ", ".join(str(16*x) for r in range(7) for x in SCHED[r]) + "};\n"
    return o

def compress_split(name, parts):
    """Rounds split over several methods; the 16 state rows go through st (int[256]) between them."""
    o = f"""
    /** Rounds split into parts {parts} (separate methods, each small enough that C1 tier 3 compiles it,
     *  which HotSpot's tiered policy needs before C2 will); the state goes through st[] between parts. */
    static void {name}(int[] m, int mOff, int[] h, int hOff, int ctrBase, int ctrMask, int flags,
                       int[] out, int outOff, int outStride, int[] st) {{
        initState(h, hOff, ctrBase, ctrMask, flags, st);
"""
    for pi in range(len(parts)):
        if pi == len(parts) - 1:
            o += f"        {name}P{pi}(m, mOff, st, out, outOff, outStride);\n"
        else:
            o += f"        {name}P{pi}(m, mOff, st);\n"
    o += "    }\n"
    for pi,(r0,r1) in enumerate(parts):
        last = pi == len(parts) - 1
        if last:
            o += f"    private static void {name}P{pi}(int[] m, int mOff, int[] st, int[] out, int outOff, int outStride) {{\n"
        else:
            o += f"    private static void {name}P{pi}(int[] m, int mOff, int[] st) {{\n"
        for i in range(16):
            o += f"        IntVector v{i} = IntVector.fromArray(S, st, {16*i});\n"
        for w in range(16):
            o += f"        IntVector m{w} = IntVector.fromArray(S, m, mOff + {16*w});\n"
        for r in range(r0, r1):
            sc = SCHED[r]
            for gi,(a,b,c,d) in enumerate(QUARTERS):
                o += g(f"v{a}",f"v{b}",f"v{c}",f"v{d}",f"m{sc[2*gi]}",f"m{sc[2*gi+1]}",False)
        if last:
            for i in range(8):
                o += f"        v{i}.lanewise(XOR, v{i+8}).intoArray(out, outOff + {i} * outStride);\n"
        else:
            for i in range(16):
                o += f"        v{i}.intoArray(st, {16*i});\n"
        o += "    }\n"
    return o

INIT = """
    /** Initial state rows (spec 2.2) to st: chaining value, IV[0..4), counter (lane-wise), 0, block length 64, flags. */
    static void initState(int[] h, int hOff, int ctrBase, int ctrMask, int flags, int[] st) {
        System.arraycopy(h, hOff, st, 0, 128);
        System.arraycopy(IV_ROWS, 0, st, 128, 64);
        IOTA.lanewise(AND, ctrMask).add(ctrBase).intoArray(st, 192);
        IntVector.zero(S).intoArray(st, 208);
        IntVector.broadcast(S, 64).intoArray(st, 224);
        IntVector.broadcast(S, flags).intoArray(st, 240);
    }
"""

def transpose():
    o = """
    /** Block b of the 16 chunks at in[off + l*1024], transposed in registers, to msg[mOff + 16w + l]. */
    static void transposeBlock(byte[] in, int off, int[] msg, int mOff) {
"""
    for l in range(16):
        o += f"        IntVector r{l} = ByteVector.fromArray(BS, in, off + {l*1024}).reinterpretAsInts();\n"
    o += "        IntVector a, b;\n"
    for k in (8,4,2,1):
        for r in range(16):
            if r & k: continue
            o += f"        a = r{r}; b = r{r+k};\n"
            o += f"        r{r} = a.blend(b.rearrange(SWAP{k}), MASK{k});\n"
            o += f"        r{r+k} = a.rearrange(SWAP{k}).blend(b, MASK{k});\n"
    for w in range(16):
        o += f"        r{w}.intoArray(msg, mOff + {16*w});\n"
    o += "    }\n"
    return o

def deinterleave():
    o = """
    /** Message words of 16 parents p0..p0+15 from the node planes (children 2p, 2p+1), to msg[16w + l]. */
    static void parentMessages(int[] planes, int n, int p0, int[] msg) {
        IntVector a, b;
"""
    for w in range(8):
        o += f"        a = IntVector.fromArray(S, planes, {w} * n + 2 * p0); b = IntVector.fromArray(S, planes, {w} * n + 2 * p0 + 16);\n"
        o += f"        a.rearrange(EVEN).blend(b.rearrange(EVEN), HIGH8).intoArray(msg, {16*w});\n"
        o += f"        a.rearrange(ODD).blend(b.rearrange(ODD), HIGH8).intoArray(msg, {16*(w+8)});\n"
    o += "    }\n"
    return o

import sys
tmpl = open(sys.argv[1]).read()
body = compress("compressUnrolled", True, False) + compress("compressLooped", False, False) \
     + compress("compressLoopedShifts", False, True) + compress_mem("compressLoopedMem") + INIT + compress_split("compressSplit2", [(0,3),(3,7)]) + compress_split("compressSplit4", [(0,2),(2,4),(4,6),(6,7)]) + compress_split("compressSplit3", [(0,2),(2,5),(5,7)]) + transpose() + deinterleave()
open(sys.argv[2], "w").write(tmpl.replace("//GENERATED//", body))
