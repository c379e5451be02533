#!/bin/sh
# run.sh - the packaging checks `make test` runs after the Criterion suites:
#   1. only cowvm_ symbols leave libcowvm.a and libcowvm.so, whose SONAME is libcowvm.so.0;
#   2. clash.c, which defines current, put_page, find_vma, alloc_pages and list_add itself,
#      links against each library and runs the fork story correctly;
#   3. `make install` into a temporary DESTDIR installs the header, both libraries, cowvm, its
#      man page and cowvm.pc, and the README's program (the first ```c block after "## Using
#      the library") builds from it with `pkg-config --cflags --libs cowvm` as C11 -pedantic
#      -Werror (shared and static) and as C++17, and prints what the README says.
# Environment (from make): BUILD, CC, CXX, SAN (sanitizers the libraries were built with), MAKE.
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
CXX=${CXX:-c++}
MAKE=${MAKE:-make}
SANFLAGS=
if [ -n "${SAN:-}" ]; then SANFLAGS="-fsanitize=$SAN"; fi
WARN="-Wall -Wextra -Werror -pedantic"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "  ok: $1"; }
bad() { echo "  FAILED: $1"; fail=1; }

# ---- 1. exported symbols ----------------------------------------------------------------------
foreign=$(nm -g --defined-only "$BUILD/libcowvm.a" | awk 'NF == 3 { print $3 }' | grep -v '^cowvm_' || true)
if [ -z "$foreign" ]; then ok "libcowvm.a defines only cowvm_ globals"
else bad "libcowvm.a exports: $(echo $foreign)"; fi
# the version node COWVM_0 is an absolute symbol of the version script, not a function
foreign=$(nm -D --defined-only "$BUILD/libcowvm.so" | awk 'NF == 3 && !($2 == "A" && $3 == "COWVM_0") { print $3 }' |
	  grep -v '^cowvm_' || true)
if [ -z "$foreign" ]; then ok "libcowvm.so exports only cowvm_ symbols"
else bad "libcowvm.so exports: $(echo $foreign)"; fi
n=$(nm -D --defined-only "$BUILD/libcowvm.so" | grep -c ' T cowvm_' || true)
if [ "$n" -ge 40 ]; then ok "libcowvm.so exports the $n cowvm_ functions"
else bad "libcowvm.so exports only $n cowvm_ functions"; fi
if readelf -d "$BUILD/libcowvm.so" | grep -q 'SONAME.*\[libcowvm\.so\.0\]'; then ok "SONAME libcowvm.so.0"
else bad "the shared library's SONAME is not libcowvm.so.0"; fi

# ---- 2. a program with clashing names, against each library -----------------------------------
src=tests/packaging/clash.c
if $CC -std=c11 $WARN $SANFLAGS -Iinclude -o "$tmp/clash-static" "$src" "$BUILD/libcowvm.a" -lpthread 2> "$tmp/err"; then
	if "$tmp/clash-static"; then ok "clash.c against libcowvm.a"; else bad "clash.c against libcowvm.a ran wrong"; fi
else bad "clash.c does not link against libcowvm.a: $(cat "$tmp/err")"; fi
if $CC -std=c11 $WARN $SANFLAGS -Iinclude -o "$tmp/clash-shared" "$src" -L"$BUILD" -lcowvm -lpthread 2> "$tmp/err"; then
	if LD_LIBRARY_PATH="$BUILD" "$tmp/clash-shared"; then ok "clash.c against libcowvm.so"
	else bad "clash.c against libcowvm.so ran wrong"; fi
else bad "clash.c does not link against libcowvm.so: $(cat "$tmp/err")"; fi

# ---- 3. install, pkg-config, the README's program ---------------------------------------------
prefix=/opt/cowvm
stage="$tmp/stage"
if $MAKE -s install BUILD="$BUILD" SAN="${SAN:-}" PREFIX="$prefix" DESTDIR="$stage" > "$tmp/install.log" 2>&1; then
	ok "make install PREFIX=$prefix DESTDIR=..."
else bad "make install failed: $(cat "$tmp/install.log")"; fi
root="$stage$prefix"
for f in include/cowvm.h lib/libcowvm.a lib/libcowvm.so.0 lib/libcowvm.so bin/cowvm \
	 share/man/man1/cowvm.1 lib/pkgconfig/cowvm.pc; do
	[ -e "$root/$f" ] || bad "not installed: $f"
done
[ "$(readlink "$root/lib/libcowvm.so.0")" != "" ] || bad "lib/libcowvm.so.0 is not a link to the versioned library"
if "$root/bin/cowvm" run examples/fork-cow.cows > /dev/null 2>&1; then ok "the installed cowvm runs a scenario"
else bad "the installed cowvm does not run examples/fork-cow.cows"; fi

awk '/^## Using the library/ { on = 1 } on && /^```c$/ { grab = 1; next } grab && /^```$/ { exit } grab { print }' \
	README.md > "$tmp/readme.c"
[ -s "$tmp/readme.c" ] || bad "no C program found in README.md's \"Using the library\""
export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage"
if ! pc=$(pkg-config --cflags --libs cowvm); then bad "pkg-config does not know cowvm"; pc=; fi
pcs=$(pkg-config --cflags --libs --static cowvm || true)
# what the README says the program prints
want="parent reads C, child reads B; the parent's page is its own again: yes; invariants: ok"
run_readme() { # $1 what, $2 binary, $3 LD_LIBRARY_PATH
	out=$(LD_LIBRARY_PATH="$3" "$2" 2>&1) || { bad "$1: the README's program failed: $out"; return; }
	if [ "$out" = "$want" ]; then ok "$1"; else bad "$1: printed \"$out\", README says \"$want\""; fi
}
if $CC -std=c11 $WARN $SANFLAGS -o "$tmp/readme-c" "$tmp/readme.c" $pc 2> "$tmp/err"; then
	run_readme "README program, C11 -pedantic, shared library via pkg-config" "$tmp/readme-c" "$root/lib"
	if readelf -d "$tmp/readme-c" | grep -q 'NEEDED.*\[libcowvm\.so\.0\]'; then ok "it needs libcowvm.so.0"
	else bad "the program does not record libcowvm.so.0"; fi
else bad "README program does not build as C11: $(cat "$tmp/err")"; fi
if $CXX -std=c++17 $WARN $SANFLAGS -x c++ -o "$tmp/readme-cxx" "$tmp/readme.c" $pc 2> "$tmp/err"; then
	run_readme "README program, C++17 -pedantic, shared library via pkg-config" "$tmp/readme-cxx" "$root/lib"
else bad "README program does not build as C++17: $(cat "$tmp/err")"; fi
static_pc=$(echo "$pcs" | sed 's/-lcowvm/-Wl,-Bstatic -lcowvm -Wl,-Bdynamic/')
if $CC -std=c11 $WARN $SANFLAGS -o "$tmp/readme-static" "$tmp/readme.c" $static_pc 2> "$tmp/err"; then
	run_readme "README program, C11, static library via pkg-config --static" "$tmp/readme-static" ""
	if readelf -d "$tmp/readme-static" | grep -q 'libcowvm'; then bad "the static build still needs libcowvm.so"; fi
else bad "README program does not build against libcowvm.a: $(cat "$tmp/err")"; fi

exit $fail
