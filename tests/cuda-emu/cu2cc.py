#!/usr/bin/env python3
"""cu2cc.py IN.cu OUT.cc - a CUDA source as C++ for the CPU emulator of tests/cuda-emu (see emu.h).

Two rewrites, nothing else: every launch `kernel<<<grid, block[, smem[, stream]]>>>(args)` becomes
`smoe_emu_launch([&]() { kernel(args); }, (const void *)&kernel, "kernel", grid, block[, smem[, stream]])`, and
`extern __shared__ T name[];` becomes a pointer to the launch's dynamic shared memory. #line directives keep the
compiler's messages pointing into the .cu file. (The backend's own launches go through smoe_launch in
cuda-common.cuh, which calls smoe_emu_launch itself when compiled against emu.h.)
"""
import re
import sys


def matching(s, i, open_c, close_c):
    """index just past the bracket that closes s[i] (== open_c)"""
    depth = 0
    while i < len(s):
        if s[i] == open_c:
            depth += 1
        elif s[i] == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SystemExit("cu2cc: unbalanced %s%s" % (open_c, close_c))


def kernel_start(s, end):
    """start of the kernel expression `name` or `name<targs>` that ends at s[end]"""
    i = end
    if s[i - 1] == ">":  # template arguments: walk back to the matching '<'
        depth = 0
        i -= 1
        while i >= 0:
            if s[i] == ">":
                depth += 1
            elif s[i] == "<":
                depth -= 1
                if depth == 0:
                    break
            i -= 1
    while i > 0 and (s[i - 1].isalnum() or s[i - 1] in "_:"):
        i -= 1
    return i


def convert(src):
    out, pos = [], 0
    while True:
        k = src.find("<<<", pos)
        if k < 0:
            out.append(src[pos:])
            break
        start = kernel_start(src, k)
        kernel = src[start:k]
        cfg_end = src.find(">>>", k)
        cfg = src[k + 3:cfg_end]
        p = src.index("(", cfg_end)
        if src[cfg_end + 3:p].strip():
            raise SystemExit("cu2cc: unexpected text after >>> in launch of %s" % kernel)
        q = matching(src, p, "(", ")")
        args = src[p:q]
        out.append(src[pos:start])
        out.append('smoe_emu_launch([&]() { %s%s; }, (const void *)&%s, "%s", %s)'
                   % (kernel, args, kernel, kernel, cfg))
        pos = q
    text = "".join(out)
    text = re.sub(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w:]+)\s+(\w+)\s*\[\s*\]\s*;",
                  r"\1 *\2 = (\1 *)smoe_emu_dyn_smem();", text)
    return text


def main():
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        src = f.read()
    text = '#line 1 "%s"\n' % src_path + convert(src)
    with open(out_path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
