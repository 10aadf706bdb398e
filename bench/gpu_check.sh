#!/usr/bin/env bash
# One GPU check, offline, in under 10 minutes: raw engine vs distillkit env-steps/s and a short
# teacher PPO run, written to one JSON.
#
#   bench/gpu_check.sh [BUNDLE] [OUT]     # defaults: bundle/  bench/out/gpu_check.json
#
# Measures, on CUDA:
#   1. Isaac Lab rough terrain (Isaac-Velocity-Rough-AnymalD, generated assets) at 4096 envs:
#      raw ManagerBasedRLEnv.step vs distillkit's wrapper (bench/isaaclab_overhead.py);
#   2. MuJoCo Warp, the flagship walker_rough at 4096 worlds: raw mujoco_warp.step vs the
#      distillkit env (bench/warp_throughput.py);
#   3. short teacher PPO runs (distillkit.train, 10 iterations at 4096 envs): the flagship on
#      MuJoCo Warp, and ANYmal rough terrain on Isaac Lab.
#
# The machine needs Python 3.12, an NVIDIA driver (compute capability >= 7.5) and no internet.
# Prepare the bundle on a machine WITH internet, same OS / CPU architecture, from the repo root:
#
#   python3.12 -m pip download -d bundle/wheels ".[isaaclab,warp]" pip setuptools wheel
#
# (pip builds distillkit's own wheel and fetches every dependency, ~6 GB; antlr4-python3-runtime
# comes as an sdist and is built offline from it, hence setuptools/wheel.) Copy the repo and
# bundle/ to the GPU machine and run this script from the repo root. It installs into .venv-gpu
# from bundle/wheels only (pip --no-index) and reuses that venv on later runs.
set -euo pipefail

cd "$(dirname "$0")/.."
BUNDLE=${1:-bundle}
OUT=${2:-bench/out/gpu_check.json}
PYTHON=${PYTHON:-python3.12}
VENV=${VENV:-.venv-gpu}           # an existing venv with the extras may be named instead
WORK=$(mktemp -d)
START=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    [ -d "$BUNDLE/wheels" ] || { echo "gpu_check: no wheel bundle at $BUNDLE/wheels (see the header of $0)" >&2; exit 2; }
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --no-index --find-links "$BUNDLE/wheels" --upgrade pip setuptools wheel
    "$VENV/bin/pip" install --quiet --no-index --find-links "$BUNDLE/wheels" -e ".[isaaclab,warp]"
fi
PY="$VENV/bin/python"
export DISTILLKIT_ISAAC_ASSETS=generated      # offline: the project's own USD assets
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$WORK/gpu.txt" \
    || { echo "gpu_check: nvidia-smi failed: no NVIDIA driver / GPU here" >&2; exit 2; }

# Each step has its own time limit (560 s in all), so the check stays within 10 minutes even when one
# hangs. The first step is the longest: Warp compiles its CUDA kernels (cached for the later steps)
# and Isaac Lab meshes the stock 10 x 20 rough-terrain grid.
step() {  # name, seconds, command...
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s)"
    if timeout "$limit" "$@" > "$WORK/$name.log" 2>&1; then echo ok > "$WORK/$name.status"
    else echo "failed rc=$?" > "$WORK/$name.status"; tail -20 "$WORK/$name.log"; fi
}

step isaaclab 220 "$PY" bench/isaaclab_overhead.py --task anymal_rough --num-envs 4096 --device cuda \
    --steps 50 --repeats 5 --out "$WORK/isaaclab.json"
step mujoco_warp 120 "$PY" bench/warp_throughput.py --device cuda --worlds 4096 --tasks walker_rough \
    --out "$WORK/mujoco_warp.json"
ppo_code() {  # engine, task: ten PPO iterations at 4096 envs, the metrics table as JSON
    echo "
import json
from distillkit.train import train_teacher
log = train_teacher('$2', '$WORK/teacher_$1', 4096 * 24 * 10, num_envs=4096, engine='$1', device='cuda',
                    progress=False)
json.dump(log.to_dict('records'), open('$WORK/ppo_$1.json', 'w'))"
}
step ppo_mujoco_warp 100 "$PY" -c "$(ppo_code mujoco_warp walker_rough)"
step ppo_isaaclab 120 "$PY" -c "$(ppo_code isaaclab anymal_rough)"

"$PY" - "$WORK" "$OUT" "$START" <<'EOF'
import datetime, json, pathlib, platform, subprocess, sys, time
work, out, start = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
def part(name):
    path = work / f"{name}.json"
    return {"status": (work / f"{name}.status").read_text().strip(),
            "result": json.loads(path.read_text()) if path.exists() else None,
            "log_tail": (work / f"{name}.log").read_text()[-2000:]}
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "gpu": (work / "gpu.txt").read_text().strip(), "host": platform.node(), "git_commit": commit,
          "isaaclab_rough_4096": part("isaaclab"), "mujoco_warp_walker_rough_4096": part("mujoco_warp"),
          "teacher_ppo_mujoco_warp_walker_rough_4096": part("ppo_mujoco_warp"),
          "teacher_ppo_isaaclab_rough_4096": part("ppo_isaaclab"), "wall_s": round(time.time() - start)}
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"gpu_check: wrote {out} ({report['wall_s']} s)")
for key in [k for k in report if isinstance(report[k], dict)]:
    print(f"  {key}: {report[key]['status']}")
EOF
