#!/bin/sh
# Build-time check (Kbuild): the C helpers declared in rust_loop_helpers.h and the
# Rust declarations of them in kapi/helpers.rs name the same functions, so neither
# side can gain, lose or rename one without the other. Types are checked by the C
# compiler (the .c includes the .h) on one side and reviewed on the other.
# Usage: helpers-check.sh HEADER HELPERS_RS
set -eu
h=$(grep -oE '\brust_loop_[a-z0-9_]+\(' "$1" | tr -d '(' | sort -u)
r=$(grep -oE '\bfn rust_loop_[a-z0-9_]+\(' "$2" | sed 's/^fn //; s/($//' | sort -u)
if [ "$h" != "$r" ]; then
	echo "rust_loop: C helpers and their Rust declarations differ:" >&2
	printf '%s\n' "$h" >"${TMPDIR:-/tmp}/rl-h.$$"
	printf '%s\n' "$r" | diff "${TMPDIR:-/tmp}/rl-h.$$" - | sed -n 's/^</  only in the header:/p; s/^>/  only in kapi\/helpers.rs:/p' >&2
	rm -f "${TMPDIR:-/tmp}/rl-h.$$"
	exit 1
fi
