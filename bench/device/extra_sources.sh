#!/usr/bin/env bash
# Packs extra training sources for the model factory: the wheels of bench/device/extra_packages.txt, installed
# without dependencies into one folder, reduced to their source files and metadata, in one .tar.xz that travels
# to the lent machine (carry it); there `ckls.train corpus --extra-site DIR` reads it like site-packages.
#
#   bench/device/extra_sources.sh OUT_DIR        (on a machine that reaches PyPI; ~5 min)
#   → OUT_DIR/site.tar.xz, OUT_DIR/packages.txt (name version of each wheel)
#
# Fails if any evaluation project (bench/eval_projects.py) or a copy of it ended up in the folder.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
mkdir -p "$out/wheels"
rm -rf "$out/site"
grep -v '^#' "$here/extra_packages.txt" | tr ' ' '\n' | grep . | sort -u > "$out/wanted.txt"
# one pip per name: a name without a wheel for this Python is skipped, not fatal
xargs -P 8 -I{} sh -c "$py -m pip download -q --no-deps --only-binary=:all: -d '$out/wheels' '{}' \
  >/dev/null 2>&1 || echo 'no wheel: {}'" < "$out/wanted.txt"
$py -m pip install -q --no-deps --no-compile --no-warn-conflicts --target "$out/site" "$out"/wheels/*.whl \
  2>&1 | grep -v "already exists" || true
# keep sources and the metadata the corpus needs (METADATA for the licence, RECORD for the file list)
find "$out/site" -type f ! -name '*.py' ! -path '*.dist-info/METADATA' ! -path '*.dist-info/RECORD' \
  ! -path '*.dist-info/licenses/*' ! -path '*.dist-info/LICENSE*' -delete
find "$out/site" -type d -empty -delete
bad=$(find "$out/site" -type d \( -iname 'sqlparse' -o -iname 'tomlkit' -o -iname 'marshmallow' \) | head -5)
if [ -n "$bad" ]; then echo "evaluation project inside the extra sources: $bad" >&2; exit 1; fi
ls "$out/site" | grep '\.dist-info$' | sed 's/\.dist-info$//' > "$out/packages.txt"
tar -C "$out" -cf - site | xz -T2 -9 > "$out/site.tar.xz"
echo "$(wc -l < "$out/packages.txt") distributions, $(du -sh "$out/site" | cut -f1) of sources," \
  "$(du -h "$out/site.tar.xz" | cut -f1) packed"
