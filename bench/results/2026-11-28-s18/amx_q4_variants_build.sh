#!/bin/bash
# usage: amx_q4_variants_build.sh "name:FLAGS" ...
# Builds ./harness from amx_q4_variants.c with one object per variant: NAME.c in this folder if
# there is one (a copy of src/kernels/packed_amx.c with the variant's #if knobs), else the
# repository's packed_amx.c, compiled with FLAGS and its exported symbols renamed NAME_*.
# Expects the repository at /work/main with a Release build in build/.
set -e
cd "$(dirname "$0")"
decl=""; list=""; objs=""
for spec in "$@"; do
  name="${spec%%:*}"; flags="${spec#*:}"
  src=/work/main/src/kernels/packed_amx.c
  [ -f "$name.c" ] && src="$name.c"
  ren=""
  for sym in pk_amx pk_amx_on pk_amx_int8_on pk_amx_release pk_amx_tile_bf16 pk_amx_q4_blocks pk_amx_tile_q4 pk_amx_bf16_peak_loop pk_amx_int8_peak_loop; do ren="$ren -D$sym=${name}_${sym#pk_amx_}"; done
  ren="$ren -Dpk_amx_tile_q4=${name}_tile_q4 -Dpk_amx_q4_blocks=${name}_q4_blocks"
  gcc -O3 -std=c11 -D_GNU_SOURCE -I/work/main/src -I/work/main/include -I/work/main/src/kernels $flags $ren -c "$src" -o "$name.o"
  decl="$decl V($name)"; list="$list {\"$name\", ${name}_tile_q4, ${name}_q4_blocks},"
  objs="$objs $name.o"
done
gcc -O2 -std=c11 -D_GNU_SOURCE -I/work/main/src -I/work/main/include "-DVARIANTS_DECL=$decl" "-DVARIANTS_LIST=$list" amx_q4_variants.c $objs /work/main/build/libs1c.a -lm -lpthread -o harness
