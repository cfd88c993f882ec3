#!/usr/bin/env bash
# Configure and build the test kernel (bzImage + modules, among them the reference
# loop.ko and null_blk.ko) in a cached build tree keyed by kernel version, fragment
# and toolchain. Prints one line per stage and a progress line every 30 s; the full
# log is kept in the build tree as build.log. A finished tree is reused as is.
set -euo pipefail
. "$(dirname "$0")/env.sh"

KSRC=$(RL_KSRC)
[ -n "$KSRC" ] || die "no kernel source: run scripts/setup.sh"
B=$(RL_KBUILD)
if [ -f "$B/.rust_loop-built" ]; then
	log "cached kernel: $B"
	exit 0
fi
mkdir -p "$B"
LOGF=$B/build.log
: >"$LOGF"
MK=(make -C "$KSRC" O="$B" LLVM="$RL_LLVM" RUST_LIB_SRC="$(RL_RUST_LIB_SRC)")
start=$(date +%s)
stage() { log "[$(($(date +%s) - start))s] $*"; }

stage "configuring $KSRC into $B (tinyconfig + ${RL_FRAGMENTS[*]##*/})"
"${MK[@]}" rustavailable >>"$LOGF" 2>&1 || { tail -20 "$LOGF"; die "Rust is not available for this kernel build (see $LOGF)"; }
"${MK[@]}" tinyconfig >>"$LOGF" 2>&1
"$KSRC"/scripts/kconfig/merge_config.sh -m -O "$B" "$B/.config" "${RL_FRAGMENTS[@]}" >>"$LOGF" 2>&1
"${MK[@]}" olddefconfig >>"$LOGF" 2>&1
# Every option asked for must have survived olddefconfig (a missing dependency drops
# options silently otherwise).
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*) ;; *) continue ;; esac
	grep -qx "$line" "$B/.config" || { log "config: $line did not stick"; bad=1; }
done < <(cat "${RL_FRAGMENTS[@]}")
[ $bad = 0 ] || die "kernel config incomplete (see above)"

stage "building bzImage and modules with -j$(($(nproc) + 1)) (6-15 min on 2 cores; log: $LOGF)"
"${MK[@]}" -j$(($(nproc) + 1)) bzImage modules >>"$LOGF" 2>&1 &
pid=$!
total=$(grep -c '' "$B/.config")
while kill -0 $pid 2>/dev/null; do
	sleep 30
	n=$(grep -cE '^  (CC|RUSTC|AS|LD|AR)' "$LOGF" || true)
	stage "  ... $n objects built so far"
done
wait $pid || { tail -40 "$LOGF"; die "kernel build failed (full log: $LOGF)"; }
# In-tree Rust module builds (make M=) need these present.
for f in arch/x86/boot/bzImage drivers/block/loop.ko drivers/block/null_blk/null_blk.ko rust/kernel.o; do
	[ -e "$B/$f" ] || die "kernel build produced no $f"
done
touch "$B/.rust_loop-built"
stage "kernel ready: $B"
