#!/usr/bin/env python3
"""cuda_stubs.py SO LIBVEL OUT_DIR HEADER...: the lazy-loading half of the
CUDA build (mk/cuda.mk).

The CUDA code lives in a shared object (SO, build/libvelcuda.so, linked with
cuBLAS, cuBLASLt, cuDNN and the CUDA runtime), so a binary maps those
libraries only when it first calls into CUDA, not at start (they cost ~200 MB
of resident memory just by being loaded). Binaries link instead a small
archive of stubs; this script writes them:

OUT_DIR/cuda_stubs.c: for every function declared in the HEADERs (prototypes
  with named parameters) that SO defines, a function of the same name and
  signature that resolves the real one with vel_cuda_sym (nn/cuda/lazy.h) on
  first use and calls it. When SO cannot be loaded the stub fails softly:
  int -> VCUDA_ENODEV, pointer -> NULL, size_t -> 0, void -> nothing;
  vcuda_device_count reports no device and vcuda_last_error the reason, as
  vcuda.h promises for a machine without a driver.
OUT_DIR/cuda_exports.c and OUT_DIR/cuda_exports.list: the functions and data
  of LIBVEL (build/libvel.a) that SO calls back. The .c takes their addresses
  so the static link keeps them in every binary that can load SO; the .list is
  the --dynamic-list that exports them for dlopen to bind SO to.

New ops need nothing here: declare them in nn/cuda/ops.h and they get a stub.
Exit: 0, 1 on a header declaration it cannot forward (unnamed parameter or an
unknown return type), 2 on usage.
"""
import os
import re
import subprocess
import sys


def nm_names(args, path):
    out = subprocess.run(["nm"] + args + [path], check=True, capture_output=True,
                         text=True).stdout
    names = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and not line.endswith(":"):
            names[f[-1]] = f[-2]
    return names


def prototypes(path):
    """(return type, name, parameter text) of each function prototype."""
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    text = text.replace('extern "C" {', " ")
    for stmt in text.split(";"):
        m = re.search(r"([A-Za-z_][\w\s\*]*?)\b([A-Za-z_]\w*)\s*\(([^()]*)\)\s*$", stmt)
        if not m:
            continue
        ret = m.group(1).strip()
        ret = re.split(r"[{}]", ret)[-1].strip()
        ret = re.sub(r"^(extern|static|inline)\s+", "", ret)
        yield ret, m.group(2), " ".join(m.group(3).split())


def arg_names(params, fname):
    """Parameter names, in order (a declaration without them cannot be
    forwarded; a misparse would fail to compile, never compile wrong)."""
    if params in ("", "void"):
        return []
    names = []
    for p in params.split(","):
        words = re.findall(r"\w+", re.sub(r"\[[^\]]*\]", "", p))
        if p.strip().endswith("*") or len(words) < 2 or words[-2:] == ["const"] * 2 \
                or (len(words) == 2 and words[0] in ("const", "struct", "unsigned")):
            sys.exit("cuda_stubs.py: %s: unnamed parameter '%s'" % (fname, p.strip()))
        names.append(words[-1])
    return names


SPECIAL = {
    "vcuda_device_count": "{ *n = 0; return 0; }",
    "vcuda_last_error": "return vel_cuda_load_error();",
}


def failure(ret, name):
    if name in SPECIAL:
        return SPECIAL[name]
    if ret == "void":
        return "return;"
    if "*" in ret:
        return "return NULL;"
    if ret == "int":
        return "return VCUDA_ENODEV;"
    if ret == "size_t":
        return "return 0;"
    sys.exit("cuda_stubs.py: %s returns '%s': add its failure value" % (name, ret))


def main():
    if len(sys.argv) < 5:
        sys.exit(2)
    so, libvel, out, headers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    so_defined = nm_names(["-D", "--defined-only"], so)
    so_undefined = nm_names(["-D", "--undefined-only"], so)
    vel_defined = {n: t for n, t in nm_names(["--defined-only"], libvel).items()
                   if t in "TDBR"}
    stubs, seen = [], set()
    for h in headers:
        for ret, name, params in prototypes(h):
            if name not in so_defined or name in seen:
                continue
            seen.add(name)
            args = ", ".join(arg_names(params, name))
            stubs.append(
                "%s %s(%s) {\n"
                "    static __typeof__(%s) *fp;\n"
                "    __typeof__(%s) *f = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);\n"
                "    if (!f) {\n"
                "        f = (__typeof__(%s) *)vel_cuda_sym(\"%s\");\n"
                "        __atomic_store_n(&fp, f, __ATOMIC_RELEASE);\n"
                "    }\n"
                "    if (!f) %s\n"
                "    %sf(%s);\n"
                "}\n" % (ret, name, params or "void", name, name, name, name, failure(ret, name),
                         "" if ret == "void" else "return ", args))
    os.makedirs(out, exist_ok=True)
    incl = "".join('#include "%s"\n' % h for h in headers)
    with open(os.path.join(out, "cuda_stubs.c"), "w") as f:
        f.write("// Generated by mk/cuda_stubs.py from %s and %s: do not edit.\n"
                "// Each function loads the CUDA half on first use (nn/cuda/lazy.h).\n"
                "#include <stddef.h>\n\n%s#include \"nn/cuda/lazy.h\"\n#include \"nn/cuda/vcuda.h\"\n\n"
                % (" ".join(headers), so, incl))
        f.write("\n".join(stubs))
    back = sorted(n for n in so_undefined if n in vel_defined)
    with open(os.path.join(out, "cuda_exports.c"), "w") as f:
        f.write("// Generated by mk/cuda_stubs.py: the libvel symbols %s calls back.\n"
                "// Declared here by name only (their types do not matter to the linker).\n"
                % so)
        for n in back:
            f.write("extern char %s[];\n" % n)
        f.write("void *const vel_cuda_callbacks[] = {\n")
        for n in back:
            f.write("    %s,\n" % n)
        f.write("    0,\n};\n")
    with open(os.path.join(out, "cuda_exports.list"), "w") as f:
        f.write("{\n" + "".join("  %s;\n" % n for n in back) + "};\n")


if __name__ == "__main__":
    main()
