#!/usr/bin/env bash
# Prepare the wheels the GPU check needs, in pieces small enough to travel to the GPU machine.
#
#   bench/gpu_prepare.sh            # from the repo root, on a machine that reaches PyPI
#
# The GPU machine's image has Python 3.12 and torch 2.11 (and pip, absl-py, etils, numpy) but
# not mujoco, mujoco-warp or warp-lang, and it reaches no package index. What travels to it is the
# working tree plus the ignored folders named in a call's `carry`, 64 MiB per call; carried
# folders stay on the machine while it is warm (30 s after a call). So the three wheels (~186 MB,
# warp-lang alone 164 MB) go as one uncompressed tar, split into pieces that fit beside the working
# tree (3 of 60 MiB with a ~3 MiB tree), one piece per ignored folder:
#
#   bundle/gpu/wheels/*.whl                 the downloaded wheels (not carried)
#   bundle/gpu/part1/wheels.tar.00          piece 1 (+ manifest.json, the same in every part)
#   bundle/gpu/part2/wheels.tar.01          ...
#
# bench/gpu_check.sh on the GPU machine checks each piece against the manifest (sha256),
# reassembles the tar once all have arrived, checks it and every wheel, and installs the wheels
# with `pip install --no-index --no-deps --target bundle/gpu/site`. docs/benchmarks.md lists the
# calls. The versions are those installed in this repo's environment (what the tests ran on);
# set MUJOCO_VERSION, MUJOCO_WARP_VERSION or WARP_VERSION to override.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
BUNDLE=${BUNDLE:-bundle/gpu}
# Every call carries the working tree (tracked and untracked-not-ignored files) beside its piece, 64 MiB
# in all: the pieces are as large as that leaves room for, less 1 MiB (PIECE overrides, e.g. 60M).
TREE=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
PIECE=${PIECE:-$(( 63 * 1024 * 1024 - TREE ))}
if [ "$(numfmt --from=iec "$PIECE")" -lt $(( 4 * 1024 * 1024 )) ]; then
    echo "gpu_prepare: the working tree that travels with every call is $((TREE / 1048576)) MiB of the 64 MiB a call" \
         "takes, which leaves pieces under 4 MiB; see docs/benchmarks.md (GPU check) for making it smaller" >&2
    exit 2
fi

version() {  # installed version of a distribution, or the fallback given
    "$PYTHON" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: print(sys.argv[2])" "$1" "$2"
}
MUJOCO_VERSION=${MUJOCO_VERSION:-$(version mujoco 3.12.0)}
MUJOCO_WARP_VERSION=${MUJOCO_WARP_VERSION:-$(version mujoco-warp 3.12.0)}
WARP_VERSION=${WARP_VERSION:-$(version warp-lang 1.17.0)}

mkdir -p "$BUNDLE/wheels"
rm -f "$BUNDLE"/wheels/*.whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$BUNDLE/wheels" \
    "mujoco==$MUJOCO_VERSION" "mujoco-warp==$MUJOCO_WARP_VERSION" "warp-lang==$WARP_VERSION"

rm -rf "$BUNDLE"/part* "$BUNDLE/wheels.tar" "$BUNDLE/pieces"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00Z' \
    -cf "$BUNDLE/wheels.tar" -C "$BUNDLE" wheels
mkdir -p "$BUNDLE/pieces"
split -b "$PIECE" -d -a 2 "$BUNDLE/wheels.tar" "$BUNDLE/pieces/wheels.tar."

"$PYTHON" - "$BUNDLE" <<'EOF'
import hashlib, json, pathlib, sys
bundle = pathlib.Path(sys.argv[1])
sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
pieces = sorted((bundle / "pieces").iterdir())
manifest = {
    "format": "distillkit.gpu_wheels/1",
    "tar": {"name": "wheels.tar", "bytes": (bundle / "wheels.tar").stat().st_size, "sha256": sha(bundle / "wheels.tar")},
    "wheels": [{"name": w.name, "bytes": w.stat().st_size, "sha256": sha(w)} for w in sorted((bundle / "wheels").glob("*.whl"))],
    "pieces": [{"part": f"part{i + 1}", "name": p.name, "bytes": p.stat().st_size, "sha256": sha(p)}
               for i, p in enumerate(pieces)],
}
text = json.dumps(manifest, indent=2) + "\n"
for i, p in enumerate(pieces):
    part = bundle / f"part{i + 1}"
    part.mkdir()
    p.rename(part / p.name)
    (part / "manifest.json").write_text(text)
(bundle / "pieces").rmdir()
(bundle / "wheels.tar").unlink()
for w in manifest["wheels"]:
    print(f"wheel  {w['name']:70s} {w['bytes'] / 2**20:7.1f} MiB")
for p in manifest["pieces"]:
    print(f"piece  {bundle}/{p['part']}/{p['name']:48s} {p['bytes'] / 2**20:7.1f} MiB")
EOF

echo "working tree that travels with every call: $((TREE / 1024)) KiB; pieces of at most $(( $(numfmt --from=iec "$PIECE") / 1024 )) KiB"
echo
echo "GPU machine calls (one after the other, each within 30 s of the last; see docs/benchmarks.md):"
mapfile -t PARTS < <(printf '%s\n' "$BUNDLE"/part* | sort -V)
for i in "${!PARTS[@]}"; do
    last=$(( i == ${#PARTS[@]} - 1 ))
    cmd=$([ $last = 1 ] && echo "bash bench/gpu_check.sh run" || echo "bash bench/gpu_check.sh receive")
    echo "  run(carry=[\"${PARTS[$i]}\"], command=\"$cmd\", timeout_s=$([ $last = 1 ] && echo 600 || echo 60))"
done
