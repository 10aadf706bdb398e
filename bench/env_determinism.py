"""A hash of everything the MuJoCo CPU env returns over a seeded run: a change meant to make the
env faster must leave it unchanged.

For each task: reset(seed), then ``--steps`` steps of uniform random actions in [-1.5, 1.5]
(drawn from a fixed seed; beyond the action limit, so clipping and the ``saturated`` signal are
exercised), with a push, a privileged perturbation and an ``observe()`` along the way. Every
returned tensor (observations, final observations, rewards, reward terms, flags, validity,
metrics) is kept and hashed only at the end, so a returned tensor that a later step overwrote
(a reused buffer) changes the hash too. CPU runs are deterministic, on one C thread or several.

    python bench/env_determinism.py                        # cartpole and walker_rough, 64 worlds
    python bench/env_determinism.py --tasks cartpole --num-envs 16 --steps 100
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import torch

from distillkit.envs.mujoco_cpu import MujocoEnv


def _tensors(prefix: str, value):
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for k in sorted(value):
            yield from _tensors(f"{prefix}.{k}", value[k])


def run(task: str, num_envs: int, steps: int, seed: int = 0, nthread: int | None = None) -> str:
    env = MujocoEnv(task, num_envs, nthread=nthread)
    kept = [("reset", env.reset(seed=seed))]
    rng = np.random.default_rng(seed)
    for t in range(steps):
        actions = torch.as_tensor(rng.uniform(-1.5, 1.5, (num_envs, env.action_dim)), dtype=torch.float32)
        r = env.step(actions)
        kept.append((f"step{t}", {"obs": r.obs, "final_obs": r.final_obs, "reward": r.reward,
                                  "reward_terms": r.reward_terms, "terminated": r.terminated,
                                  "truncated": r.truncated, "validity": r.validity, "metrics": r.metrics}))
        if t == steps // 3:
            ids = np.arange(0, num_envs, 3)
            env.push(ids, rng.uniform(-0.5, 0.5, (len(ids), len(env.task.push_dofs))))
            kept.append((f"observe{t}", env.observe()))
        if t == steps // 2:
            env.perturb_privileged(np.arange(1, num_envs, 4), seed=7)
            kept.append((f"observe{t}", env.observe()))
    env.close()
    digest = hashlib.sha256()
    for name, value in kept:
        for key, tensor in _tensors(name, value):
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["cartpole", "walker_rough"])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--nthread", type=int, default=None, help="C threads (default: one per core)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for task in args.tasks:
        print(f"{task} N={args.num_envs} steps={args.steps} nthread={args.nthread}: "
              f"{run(task, args.num_envs, args.steps, nthread=args.nthread)}", flush=True)


if __name__ == "__main__":
    main()
