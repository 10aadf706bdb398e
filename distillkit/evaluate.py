"""Closed-loop evaluation of a policy on held-out seeds.

A policy is run deterministically (its mean action) in ``num_envs`` worlds per seed until each
world's first episode ends; every episode is one row of the result. Evaluation seeds live in
their own range, far from any training seed, and a seed used for training is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd
import torch

from distillkit.envs import make_env

#: Held-out evaluation seeds start here; training seeds stay below.
EVAL_SEED_BASE = 1_000_000


def held_out_seeds(count: int) -> list[int]:
    return [EVAL_SEED_BASE + i for i in range(count)]


@torch.no_grad()
def evaluate_policy(policy: Callable[[dict], torch.Tensor], task: str, seeds: Iterable[int], *,
                    num_envs: int = 32, engine: str = "mujoco", training_seeds: Iterable[int] = ()) -> pd.DataFrame:
    """Run ``policy`` (obs dict -> actions) for one episode in each of ``num_envs`` worlds per
    seed. Returns one row per episode: seed, world, return, length, fell."""
    seeds = list(seeds)
    overlap = sorted(set(seeds) & set(training_seeds))
    if overlap:
        raise ValueError(f"evaluation seeds {overlap} were used for training; use held_out_seeds()")
    rows = []
    for seed in seeds:
        env = make_env(task, num_envs, engine=engine)
        obs = env.reset(seed=seed)
        ret = torch.zeros(num_envs)
        length = torch.zeros(num_envs, dtype=torch.long)
        finished = torch.zeros(num_envs, dtype=torch.bool)
        while not finished.all():
            result = env.step(policy(obs))
            running = ~finished
            ret[running] += result.reward[running]
            length[running] += 1
            for i in torch.nonzero(result.done & running).flatten().tolist():
                rows.append({"seed": seed, "world": i, "return": float(ret[i]), "length": int(length[i]),
                             "fell": bool(result.terminated[i])})
            finished |= result.done
            obs = result.obs
        env.close()
    return pd.DataFrame(rows)
