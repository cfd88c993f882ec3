#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the LLVM= value for building modules against kernel build tree $1: the one
# place that decides it (the Makefile and hence DKMS use it).
#   kernel built with clang N (CONFIG_CLANG_VERSION in its .config):
#     "-N" when clang-N is installed and is that version, else "1" (plain clang,
#     ld.lld, ...; with a warning on stderr when plain clang is another version)
#   kernel built with gcc: "" (no LLVM; rustc still builds the Rust part)
#   no .config yet (the project's own kernel before its first build): $RL_LLVM, -19
kdir=$1
cfg=
for f in "$kdir/.config" "$kdir/include/config/auto.conf"; do
	[ -n "$kdir" ] && [ -f "$f" ] && cfg=$f && break
done
if [ -z "$cfg" ]; then
	echo "${RL_LLVM:--19}"
	exit 0
fi
ver=$(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$cfg")
if [ -z "$ver" ] || [ "$ver" = 0 ]; then
	echo ""
	exit 0
fi
major=$((ver / 10000))
clang_major() { "$1" --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\)\..*/\1/p' | head -1; }
if command -v "clang-$major" >/dev/null 2>&1 && [ "$(clang_major "clang-$major")" = "$major" ]; then
	echo "-$major"
	exit 0
fi
have=$(clang_major clang)
if [ "$have" != "$major" ]; then
	echo "llvm.sh: $kdir was built with clang $major, but clang-$major is not installed" \
		"(plain clang: ${have:-none}); trying LLVM=1" >&2
fi
echo 1
