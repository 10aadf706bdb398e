#!/usr/bin/env bash
# The GPU check: MuJoCo Warp's flagship (walker_rough) at 4096 worlds on CUDA - raw mujoco_warp
# vs the distillkit env, and a few teacher PPO iterations - on a GPU machine that reaches no
# package index and takes 64 MiB per call. bench/gpu_prepare.sh (run first, where PyPI is
# reachable) puts the wheels it needs, in pieces that fit beside the working tree, in bundle/gpu/part1..N.
#
#   bench/gpu_check.sh receive        # a call carrying one part: check the pieces present so far
#   bench/gpu_check.sh run [options]  # the last call: install (once) and measure
#
# run's options (defaults: the GPU check):
#   --device cuda  --worlds 4096  --steps 30  --repeats 3  --ppo-iterations 3  --ppo-worlds <worlds>
#   --python python3   (the image's Python, with torch)   --no-ppo
#
# The pieces stay on the machine between consecutive calls while it is warm, so the parts go one
# per call and the last one runs the check; each call is a few seconds but the last. `run`
# reassembles the tar, checks every piece, the tar and each wheel against the manifest (sha256),
# installs the wheels with `pip install --no-index --no-deps --target bundle/gpu/site` (plain
# unzip if that Python has no pip) and reuses that install on later runs. Results: one JSON,
# $OUT/gpu_check.json (bench/out/gpu_check.json without $OUT), and a summary at the end of
# the output. Every step has its own time limit (575 s in all; the whole run took 170 s on an H200
# on 2026-12-04, before the second PPO step), so a step that hangs still leaves the others' numbers
# and time for a rerun in a 15-minute loan. PPO runs twice: with its networks where the env hands
# out its tensors (the host: the task's numpy code runs there), then on the GPU (--policy-device).
# Isaac Lab is not part of it yet (its minimal package set has not been measured; see
# docs/benchmarks.md).
set -uo pipefail

cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-bundle/gpu}
MODE=${1:-run}
shift || true

PYTHON=python3 DEVICE=cuda WORLDS=4096 STEPS=30 REPEATS=3 PPO_ITERATIONS=3 PPO_WORLDS= PPO=1
while [ $# -gt 0 ]; do
    case $1 in
        --python) PYTHON=$2; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --worlds) WORLDS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --ppo-iterations) PPO_ITERATIONS=$2; shift 2 ;;
        --ppo-worlds) PPO_WORLDS=$2; shift 2 ;;
        --no-ppo) PPO=0; shift ;;
        *) echo "gpu_check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
PPO_WORLDS=${PPO_WORLDS:-$WORLDS}
if [ "$MODE" = receive ]; then
    exec "$PYTHON" bench/gpu_wheels.py receive --bundle "$BUNDLE"
fi
[ "$MODE" = run ] || { echo "gpu_check: mode is receive or run, not $MODE" >&2; exit 2; }

RESULTS=${OUT:-bench/out}          # gpu_check.json and gpu_check.log land here (the device tool's $OUT)
WORK=$(mktemp -d)                  # each step's log, status and JSON
mkdir -p "$RESULTS"
START=$(date +%s)

step() {  # name, seconds, command...: run with a time limit, log to $WORK/<name>.log and gpu_check.log
    local name=$1 limit=$2; shift 2
    local t0; t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    if timeout "$limit" "$@" > "$WORK/$name.log" 2>&1; then echo ok > "$WORK/$name.status"
    else echo "failed rc=$?" > "$WORK/$name.status"; fi
    echo "   $(cat "$WORK/$name.status") after $(( $(date +%s) - t0 )) s"
    tail -5 "$WORK/$name.log" | sed 's/^/   | /'
    { echo "== $name: $(cat "$WORK/$name.status") after $(( $(date +%s) - t0 )) s"; cat "$WORK/$name.log"; } >> "$RESULTS/gpu_check.log"
}
: > "$RESULTS/gpu_check.log"

step install 90 "$PYTHON" bench/gpu_wheels.py install --bundle "$BUNDLE"
if [ "$(cat "$WORK/install.status")" != ok ]; then
    cat "$WORK/install.log"; exit 3
fi
export PYTHONPATH="$PWD/$BUNDLE/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

step versions 45 "$PYTHON" -c "
import json, platform, subprocess, torch, warp as wp, mujoco, mujoco_warp
wp.init()
gpu = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
                     capture_output=True, text=True).stdout.strip() if '$DEVICE'.startswith('cuda') else 'none'
print(json.dumps({'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda,
                  'warp': wp.__version__, 'mujoco': mujoco.__version__, 'mujoco_warp': mujoco_warp.__version__,
                  'warp_device': str(wp.get_device('$DEVICE')), 'gpu': gpu}))"
step mujoco_warp 200 "$PYTHON" bench/warp_throughput.py --device "$DEVICE" --worlds "$WORLDS" --tasks walker_rough \
    --steps "$STEPS" --repeats "$REPEATS" --out "$WORK/warp_throughput.json"
if [ "$PPO" = 1 ]; then
    # networks where the env hands out its tensors (the host), then on the simulating device
    step ppo 120 "$PYTHON" bench/gpu_ppo.py --task walker_rough --engine mujoco_warp --device "$DEVICE" \
        --num-envs "$PPO_WORLDS" --iterations "$PPO_ITERATIONS" --out "$WORK/ppo.json"
    step ppo_networks_on_device 120 "$PYTHON" bench/gpu_ppo.py --task walker_rough --engine mujoco_warp \
        --device "$DEVICE" --policy-device "$DEVICE" --num-envs "$PPO_WORLDS" --iterations "$PPO_ITERATIONS" \
        --out "$WORK/ppo_networks_on_device.json"
fi

"$PYTHON" - "$WORK" "$RESULTS" "$START" "$DEVICE" <<'EOF'
import datetime, json, pathlib, subprocess, sys, time
work, results, start, device = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def part(name, result=None):
    status = work / f"{name}.status"
    if not status.exists():
        return None
    path = work / (result or f"{name}.json")
    log = (work / f"{name}.log").read_text()
    return {"status": status.read_text().strip(), "result": json.loads(path.read_text()) if path.exists() else None,
            "log_tail": log[-2000:]}
versions = part("versions")
if versions and versions["status"] == "ok":
    versions["result"] = json.loads(versions["log_tail"].strip().splitlines()[-1])
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "device": device,
          "git_commit": commit or None, "install": part("install"), "versions": versions,
          "mujoco_warp_walker_rough": part("mujoco_warp", "warp_throughput.json"),
          "ppo_mujoco_warp_walker_rough": part("ppo"),
          "ppo_mujoco_warp_walker_rough_networks_on_device": part("ppo_networks_on_device"),
          "wall_s": round(time.time() - start)}
(results / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
print(f"gpu_check: wrote {results / 'gpu_check.json'} ({report['wall_s']} s)")
if versions and versions["result"]:
    print("  " + json.dumps(versions["result"]))
w = report["mujoco_warp_walker_rough"]
if w and w["result"]:
    for r in w["result"]["throughput"]:
        print(f"  mujoco_warp {r['task']} {r['worlds']} worlds on {r['device']}: env {r['env_steps_per_s']:,.0f}/s, "
              f"raw {r['raw_env_steps_per_s']:,.0f}/s, ratio {r['ratio_env_to_raw']:.3f} "
              f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}], physics {r['physics_share_of_env_step']:.0%} of an env step, "
              f"build {r['build_and_first_step_s']:.0f} s")
for key in ("ppo_mujoco_warp_walker_rough", "ppo_mujoco_warp_walker_rough_networks_on_device"):
    p = report[key]
    if p and p["result"]:
        r = p["result"]
        print(f"  PPO {r['task']} {r['num_envs']} worlds, {r['engine']} on {r['device']} (networks on "
              f"{r['networks_on']}): {r['env_steps_per_s']:,.0f} env-steps/s, collection "
              f"{r['collect_env_steps_per_s']:,.0f}/s, update {r['update_s']:.1f} s per iteration "
              f"(median of iterations 2..)")
for key in ("install", "versions", "mujoco_warp_walker_rough", "ppo_mujoco_warp_walker_rough",
            "ppo_mujoco_warp_walker_rough_networks_on_device"):
    if report[key]:
        print(f"  {key}: {report[key]['status']}")
EOF
rm -rf "$WORK"
