#!/usr/bin/env python3
"""Code size per target and stack depth on Cortex-M4 of the C library (the numbers in docs/c_library.md).

    python3 .ci/sizes.py [--out build/sizes] [--src src/lstm_c]

1. Builds the static library with CMake (CMakeLists.txt + cmake/toolchains/*.cmake) for each target at -Os
   (MinSizeRel) and -O2, and sums text/data/bss of its objects (`<triplet>-size -t`).
2. Cortex-M4F: compiles the core with -fstack-usage -fcallgraph-info=su and walks the call graph from
   lstm_model_init, lstm_step, lstm_run and lstm_step_many: the worst path's frames summed. An indirect
   call (the kernel table of the model's ISA) counts as the deepest function of any lstm_kernels table
   not already on the path;
   calls into libc/libm (memcpy, expf, ...) are listed, not counted (newlib is not built with
   -fstack-usage; examples/cortex_m4 measures the whole thing by painting the stack).
3. The Cortex-M4 firmware (examples/cortex_m4: H = 64 int8-dynamic model + the xcheck models + newlib
   printf via semihosting) at -Os and -O2: total, and the library's and the model array's share.
Prints markdown tables; exit 1 if a build failed.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# target: (toolchain file or None, size tool, extra cmake args)
TARGETS = {
    "x86_64 (gcc, SIMD)": (None, "size", []),
    "x86_64 (gcc, no SIMD)": (None, "size", ["-DLSTM_SIMD=OFF"]),
    "i386 (x87)": ("i686-linux-gnu.cmake", "i686-linux-gnu-size", []),
    "aarch64": ("aarch64-linux-gnu.cmake", "aarch64-linux-gnu-size", []),
    "armhf (ARMv7-A)": ("arm-linux-gnueabihf.cmake", "arm-linux-gnueabihf-size", []),
    "Cortex-M4F": ("cortex-m4.cmake", "arm-none-eabi-size", []),
    "Cortex-M0": ("cortex-m0.cmake", "arm-none-eabi-size", []),
}
LEVELS = {"-Os": ["-DCMAKE_BUILD_TYPE=MinSizeRel"],
          "-O2": ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG"]}
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
REQUIRED = ["-std=c99", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
ENTRIES = ["lstm_model_init", "lstm_step", "lstm_run", "lstm_step_many"]


def sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, **kw)


def library_sizes(out, src_dir):
    rows, ok = [], True
    for name, (toolchain, size_tool, extra) in TARGETS.items():
        cells = []
        for level, args in LEVELS.items():
            build = os.path.join(out, re.sub(r"[^a-z0-9]+", "-", name.lower()) + level)
            shutil.rmtree(build, ignore_errors=True)
            cmd = ["cmake", "-S", ROOT, "-B", build, "-DLSTM_STATIC_AND_SHARED=OFF", "-DLSTM_INSTALL=OFF", *args,
                   *extra]
            if toolchain:
                cmd.append(f"-DCMAKE_TOOLCHAIN_FILE={os.path.join(ROOT, 'cmake', 'toolchains', toolchain)}")
            if not shutil.which(size_tool):
                cells.append("(no toolchain)")
                continue
            p = sh(cmd)
            if p.returncode == 0:
                p = sh(["cmake", "--build", build, "-j2"])
            lib = os.path.join(build, "liblstm_embed.a")
            if p.returncode != 0 or not os.path.exists(lib):
                ok = False
                cells.append("BUILD FAILED")
                print(p.stdout[-2000:], file=sys.stderr)
                continue
            total = sh([size_tool, "-t", lib]).stdout.strip().splitlines()[-1].split()
            cells.append(f"{int(total[0]):,} / {int(total[1]):,} / {int(total[2]):,}")
        rows.append((name, *cells))
    return rows, ok


# ---- stack -------------------------------------------------------------------------------------------------

def kernel_table_functions(src_dir, level):
    """Identifiers in the initialisers of every `const lstm_kernels NAME = {...}` table the Cortex-M4 build
    compiles. The sources are preprocessed with the firmware's flags first: the tables are written with
    the LSTM_TABLE macro and under #ifdefs, so only the expanded text says which functions they hold."""
    names = set()
    for path in sorted(glob.glob(os.path.join(src_dir, "*.c"))):
        p = subprocess.run(["arm-none-eabi-gcc", *M4_FLAGS, level, *REQUIRED, f"-I{src_dir}", "-E", "-P", path],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        for body in re.findall(r"const\s+lstm_kernels\s+\w+\s*=\s*\{(.*?)\};", p.stdout, re.S):
            names.update(re.findall(r"\b([A-Za-z_]\w*)\b", body))
    if not names:  # the stack figure would silently leave out every kernel call
        raise RuntimeError("no lstm_kernels table found in the preprocessed sources: update kernel_table_functions")
    return names


def parse_callgraph(ci_files):
    frames, edges, short = {}, {}, {}
    for path in ci_files:
        for line in open(path, encoding="utf-8"):
            m = re.match(r'node: \{ title: "([^"]+)" label: "([^"\\]+)\\n[^"]*?(\d+) bytes \((\w[\w,]*)\)', line)
            if m:
                title, label, size, kind = m.groups()
                frames[title] = (int(size), kind)
                base = label.split(".")[0]
                short.setdefault(base, title)
                continue
            m = re.match(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', line)
            if m:
                edges.setdefault(m.group(1), []).append(m.group(2))
    return frames, edges, short


# Indirect calls whose targets are known, so the bound does not assume any kernel there:
# - the by-vectors fallbacks (kernels.h) call the vector kernel of their own table, passed as an argument;
BY_VECTORS = {"lstm_s8_gemm_by_vectors": r"lstm_s8_gemv_(?!f32)", "lstm_s8_gemm_f32_by_vectors": r"lstm_s8_gemv_f32_",
              "lstm_s16_gemm_by_vectors": r"lstm_s16_gemv_"}
# - the SMLAD kernel calls its panel routine (s8_cortex_m.c, assembly: push {r4-r11, lr} and {r12} = 40 bytes).
ASM_CALLS = {"lstm_s8_gemv_cortex_m": ("panel (assembly)", 40)}


def worst_path(entry, frames, edges, short, indirect):
    externals, memo = set(), {}

    def resolve(name):
        if name in frames:
            return name
        return short.get(name.split(":")[-1].split(".")[0])

    def walk(node, stack):
        if node in memo:
            return memo[node]
        if node in stack:  # only through the indirect-call approximation: the library has no recursion
            return 0, []
        size, kind = frames[node]
        best, best_path = 0, []
        targets = []
        for t in edges.get(node, []):
            if t == "__indirect_call":
                name = node.split(":")[-1]
                if name in ASM_CALLS:  # a kernel's own assembly routine: a leaf with a known frame
                    best = max(best, ASM_CALLS[name][1])
                    if best == ASM_CALLS[name][1]:
                        best_path = [(ASM_CALLS[name][0], ASM_CALLS[name][1], "static")]
                    continue
                pattern = BY_VECTORS.get(name, r"")  # a fallback calls its table's vector kernel; else any
                targets += [r for r in map(resolve, sorted(indirect))
                            if r and r not in stack and r != node and re.match(pattern, r.split(":")[-1])]
            else:
                r = resolve(t)
                if r is None:
                    externals.add(t)
                else:
                    targets.append(r)
        for t in targets:
            d, p = walk(t, stack | {node})
            if d > best:
                best, best_path = d, p
        memo[node] = (size + best, [(node.split(":")[-1], size, kind)] + best_path)
        return memo[node]

    start = resolve(entry)
    if start is None:
        return None, [], externals
    total, path = walk(start, frozenset())
    return total, path, externals


def m4_stack(out, src_dir, level):
    obj = os.path.join(out, f"stack{level}")
    shutil.rmtree(obj, ignore_errors=True)
    os.makedirs(obj)
    for c in sorted(glob.glob(os.path.join(src_dir, "*.c"))):
        base = os.path.join(obj, os.path.splitext(os.path.basename(c))[0])
        p = sh(["arm-none-eabi-gcc", *M4_FLAGS, level, *REQUIRED, "-ffunction-sections", "-fstack-usage",
                "-fcallgraph-info=su", f"-I{src_dir}", "-c", c, "-o", base + ".o"], cwd=obj)
        if p.returncode != 0:
            raise RuntimeError(p.stdout)
    frames, edges, short = parse_callgraph(glob.glob(os.path.join(obj, "*.ci")))
    indirect = kernel_table_functions(src_dir, level)
    result = {}
    for e in ENTRIES:
        result[e] = worst_path(e, frames, edges, short, indirect)
    return result


# ---- firmware ----------------------------------------------------------------------------------------------

def firmware_sizes(out, src_dir, level):
    build = os.path.join(out, f"fw-m4{level}")
    shutil.rmtree(build, ignore_errors=True)
    p = sh(["make", "-C", os.path.join(ROOT, "examples", "cortex_m4"), "-j2", f"OUT={build}", f"OPT={level}",
            f"SRC_DIR={src_dir}"])
    elf = os.path.join(build, "firmware.elf")
    if p.returncode != 0 or not os.path.exists(elf):
        print(p.stdout[-2000:], file=sys.stderr)
        return None
    text, data, bss = (int(v) for v in sh(["arm-none-eabi-size", elf]).stdout.splitlines()[1].split()[:3])
    # the library's share: sections the map attributes to build/lib/*.o
    lib = 0
    pending = None
    mine = os.path.join(build, "lib") + os.sep  # the core's objects (not newlib's .../arm-none-eabi/lib/...)
    for line in open(os.path.join(build, "firmware.map"), encoding="utf-8", errors="replace"):
        if line.startswith("Discarded input sections"):
            continue
        m = re.match(r"^ (\.(?:text|rodata|data)\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
        if m is None and pending is not None:
            m2 = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
            if m2 and m2.group(3).startswith(mine) and int(m2.group(1), 16):
                lib += int(m2.group(2), 16)
            pending = None
            continue
        if m:
            if m.group(4).startswith(mine) and int(m.group(2), 16):
                lib += int(m.group(3), 16)
            continue
        m = re.match(r"^ (\.(?:text|rodata|data)\S*)\s*$", line)
        pending = m.group(1) if m else None
    syms = sh(["arm-none-eabi-nm", "-S", elf]).stdout
    model = next((int(s.split()[1], 16) for s in syms.splitlines() if s.endswith(" model_data")), 0)
    return text, data, bss, lib, model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "sizes"))
    ap.add_argument("--src", default=os.path.join(ROOT, "src", "lstm_c"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    src = os.path.abspath(args.src)
    ok = True

    rows, built = library_sizes(args.out, src)
    ok &= built
    print("### Library size (static library, text / data / bss bytes)\n")
    print("| target | -Os | -O2 |\n|---|---|---|")
    for r in rows:
        print(f"| {' | '.join(r)} |")

    if shutil.which("arm-none-eabi-gcc"):
        print("\n### Stack on Cortex-M4F (worst path through callees, -fstack-usage/-fcallgraph-info)\n")
        print("| entry | -Os bytes | -O2 bytes | worst path at -Os |\n|---|---|---|---|")
        res = {lv: m4_stack(args.out, src, lv) for lv in ("-Os", "-O2")}
        externals = set()
        for e in ENTRIES:
            cells = []
            for lv in ("-Os", "-O2"):
                total, path, ext = res[lv][e]
                externals |= ext
                dyn = any(k != "static" for _, _, k in path)
                cells.append("-" if total is None else f"{total:,}{' (dynamic!)' if dyn else ''}")
            path = res["-Os"][e][1]
            print(f"| {e} | {cells[0]} | {cells[1]} | {' > '.join(f'{n} {s}' for n, s, _ in path)} |")
        print(f"\nNot counted (libc/libm, no -fstack-usage): {', '.join(sorted(externals)) or 'none'}.")

        print("\n### Cortex-M4F firmware (examples/cortex_m4: H = 64 int8-dynamic model, xcheck models, "
              "newlib printf over semihosting)\n")
        print("| opt | text | data | bss | of which library code | of which the H = 64 model array |")
        print("|---|---|---|---|---|---|")
        for lv in ("-Os", "-O2"):
            fw = firmware_sizes(args.out, src, lv)
            if fw is None:
                ok = False
                print(f"| {lv} | BUILD FAILED | | | | |")
            else:
                print(f"| {lv} | {fw[0]:,} | {fw[1]:,} | {fw[2]:,} | {fw[3]:,} | {fw[4]:,} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
