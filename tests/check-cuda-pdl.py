#!/usr/bin/env python3
"""check-cuda-pdl.py FILE.cu...: every __global__ kernel's first statement is SMOE_PDL_ENTER() (cuda-common.cuh).

With SMOE_CUDA_PDL=1 a kernel may start while the one before it in the stream still runs; only that first statement
makes it wait before it reads or writes anything. A kernel without it would pass every test that runs without a
Hopper GPU and race on one, so this check runs in CI. Exit status 1 and the kernels' names when one lacks it.
"""
import re
import sys


def kernels(src):
    """(name, body text after the opening brace) of each __global__ function definition"""
    for m in re.finditer(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(", src):
        i, depth = m.end() - 1, 0
        while True:  # past the parameter list
            depth += {"(": 1, ")": -1}.get(src[i], 0)
            i += 1
            if depth == 0:
                break
        brace = src.find("{", i)
        if src[i:brace].strip():  # a declaration, not a definition
            continue
        yield m.group(1), src[brace + 1:]


def main():
    bad, n = [], 0
    for path in sys.argv[1:]:
        src = re.sub(r"//[^\n]*", "", open(path).read())
        for name, body in kernels(src):
            n += 1
            if not body.lstrip().startswith("SMOE_PDL_ENTER();"):
                bad.append("%s: %s" % (path, name))
    for b in bad:
        print("kernel without SMOE_PDL_ENTER() first: " + b)
    print("check-cuda-pdl: %d kernels, %d without SMOE_PDL_ENTER()" % (n, len(bad)))
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
