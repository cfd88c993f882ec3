#!/usr/bin/env bash
# Print the project's kernel build tree (where bzImage, loop.ko and null_blk.ko live).
. "$(dirname "$0")/env.sh"
RL_KBUILD
