# Shared settings for rust_loop's scripts. Sourced, not run.
# Everything built here lives outside the repo, under $RL_CACHE.
RL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVER=${KVER:-7.3}
RL_CACHE=${RL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust_loop}
RL_LLVM=${RL_LLVM:--19}
# Kernel config fragments merged on top of tinyconfig; DEBUG=1 adds the debug kernel's
# (KASAN, lockdep, kmemleak, ...), a separate cached build tree.
RL_FRAGMENTS=("$RL_ROOT/kernel/rust_loop.config")
RL_FLAVOUR=
if [ "${DEBUG:-0}" = 1 ]; then
	RL_FRAGMENTS+=("$RL_ROOT/kernel/debug.config")
	RL_FLAVOUR=-debug
fi
# TRACE=1 adds the tracepoints (kernel/trace.config), for investigations only.
if [ "${TRACE:-0}" = 1 ]; then
	RL_FRAGMENTS+=("$RL_ROOT/kernel/trace.config")
	RL_FLAVOUR=$RL_FLAVOUR-trace
fi
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# rustc's version, e.g. 1.95.0: rust-src must match it exactly.
rustc_version() { rustc --version | awk '{print $2}'; }
RL_RUST_SRC_DIR() { echo "$RL_CACHE/rust-src-$(rustc_version)"; }
RL_RUST_LIB_SRC() { echo "$(RL_RUST_SRC_DIR)/usr/src/rustc-$(rustc_version)/library"; }

# The unpacked kernel source for $KVER (set up by setup.sh).
RL_KSRC() { ls -d "$RL_CACHE"/src/linux-source-"$KVER" 2>/dev/null | head -1; }

# Build tree key: kernel package version + fragment + toolchain.
RL_KBUILD() {
	local pkgver key
	# RL_KBUILD_DIR: use that (already built) tree as is; for development.
	[ -n "${RL_KBUILD_DIR:-}" ] && { echo "$RL_KBUILD_DIR"; return; }
	pkgver=$(cat "$RL_CACHE/src/linux-source-$KVER.version" 2>/dev/null || echo unknown)
	key=$( { echo "$pkgver"; cat "${RL_FRAGMENTS[@]}"; rustc --version; "clang$RL_LLVM" --version | head -1; } | sha256sum | cut -c1-12)
	echo "$RL_CACHE/build/linux-$pkgver$RL_FLAVOUR-$key"
}
