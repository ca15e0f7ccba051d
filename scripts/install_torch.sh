#!/bin/sh
# Install torch into a virtual environment before the package (called by `make setup`).
#
# Why: PyPI's Linux torch wheel is the CUDA build and pulls the nvidia-* packages (~2.5 GB), which a
# machine without a GPU never uses; a constraints file pins versions, not builds. So torch comes
# first, from the PyTorch CPU wheel index on a machine without a GPU, and `pip install -e .` then
# finds it installed.
#
# Usage: sh scripts/install_torch.sh PYTHON [MODE [CONSTRAINTS]]
#   MODE (or $TORCH): auto (default) - keep a torch that is already importable; else the CUDA build
#                                      when `nvidia-smi -L` lists a GPU, the CPU build otherwise
#                     cpu  - the CPU build (replaces a CUDA build)
#                     cuda - the default index's build (PyPI: CUDA on Linux; replaces a CPU build)
#                     skip - leave torch alone (you installed it yourself)
#   TORCH_CPU_INDEX: the CPU wheel index (default https://download.pytorch.org/whl/cpu; a mirror)
#   TORCH_INSTALL_DRY_RUN=1: print the pip commands instead of running them
# When the CPU index cannot be reached (checked first, within a few seconds, so nothing hangs) torch
# comes from the configured package index instead, with a warning (on PyPI, that is the CUDA build).
# Sourced with INSTALL_TORCH_LIB=1, only the functions are defined (tests call them).
set -u

CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PROBE_TIMEOUT=${TORCH_PROBE_TIMEOUT:-5}

say() { echo "install_torch: $*" >&2; }

# torch_plan MODE INSTALLED GPU -> prints what to do: keep | cpu | cuda; INSTALLED: none|cpu|cuda, GPU: yes|no
torch_plan() {
    case $1 in
        skip) echo keep ;;
        auto | "") if [ "$2" != none ]; then echo keep; elif [ "$3" = yes ]; then echo cuda; else echo cpu; fi ;;
        cpu | cuda) if [ "$2" = "$1" ]; then echo keep; else echo "$1"; fi ;;
        *) say "unknown TORCH mode '$1' (expected auto, cpu, cuda or skip)"; return 2 ;;
    esac
}

# installed_torch PYTHON -> none | cpu | cuda (the build of the torch importable there)
installed_torch() {
    "$1" -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null || echo none
}

have_gpu() {
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo yes; else echo no; fi
}

# index_reachable PYTHON URL: a bounded probe (pip's own timeouts apply per request, and a resolution
# fetches many URLs, so an unreachable index is detected here once).
index_reachable() {
    "$1" - "$2" "$PROBE_TIMEOUT" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=float(sys.argv[2])).read(1)
EOF
}

run() {
    if [ "${TORCH_INSTALL_DRY_RUN:-0}" = 1 ]; then echo "$*"; else "$@"; fi
}

install_torch() {  # PYTHON MODE CONSTRAINTS
    python=$1 mode=${2:-${TORCH:-auto}} constraints=${3:-}
    installed=$(installed_torch "$python")
    plan=$(torch_plan "$mode" "$installed" "$(have_gpu)") || return 2
    set -- "$python" -m pip install -q
    if [ -n "$constraints" ]; then set -- "$@" -c "$constraints"; fi
    case $plan in
        keep)
            say "torch: ${installed} build kept (TORCH=${mode})"; return 0 ;;
        cpu)
            if ! index_reachable "$python" "$CPU_INDEX"; then
                if [ "$installed" != none ]; then  # the fallback would bring the same build back
                    say "torch: $CPU_INDEX is not reachable; the installed $installed build is kept"
                    return 1
                fi
                say "torch: $CPU_INDEX is not reachable; torch comes from the configured package index (on PyPI" \
                    "for Linux that is the CUDA build, ~2.5 GB; set TORCH_CPU_INDEX to a mirror to avoid it)"
                run "$@" torch
                return
            fi
            if [ "$installed" != none ]; then run "$python" -m pip uninstall -q -y torch || return 1; fi
            say "torch: CPU build from $CPU_INDEX"
            run "$@" --timeout 30 --retries 1 --index-url "$CPU_INDEX" torch && return 0
            say "torch: installing from $CPU_INDEX failed; trying the configured package index"
            run "$@" torch ;;
        cuda)
            if [ "$installed" != none ]; then run "$python" -m pip uninstall -q -y torch || return 1; fi
            say "torch: the default index's build (CUDA on Linux)"
            run "$@" torch ;;
    esac
}

if [ "${INSTALL_TORCH_LIB:-0}" != 1 ]; then
    if [ $# -lt 1 ]; then
        say "usage: sh scripts/install_torch.sh PYTHON [auto|cpu|cuda|skip [CONSTRAINTS]]"
        exit 2
    fi
    install_torch "$@" || exit $?
    if [ "$plan" != keep ] && [ "${TORCH_INSTALL_DRY_RUN:-0}" != 1 ]; then
        say "torch: now the $(installed_torch "$1") build"
    fi
fi
