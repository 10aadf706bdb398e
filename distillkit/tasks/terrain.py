"""Procedural rough terrain for the planar flagship: 1-D height profiles along the walking
direction, with difficulty levels, reproducible from a seed.

Like Isaac Lab's terrain generator, the profiles are made once, when the env is built: a bank of
``variants`` profiles per level from ``TerrainConfig.seed``. A reset only picks one, so resets
stay cheap and the terrain of every episode is known from the config alone.

A profile starts with a flat platform (the robot spawns there) and continues with segments of
three kinds, equally likely, whose size grows with the difficulty ``d`` in [0, 1]:

- ``rough``: smooth random bumps (amplitude 2 cm + 6 cm·d);
- ``steps``: stairs up and down with risers of up to 2 cm + 13 cm·d and treads of 0.4–0.9 m;
- ``gaps``: flat ground broken by holes ``gap_depth`` deep and 15 cm + 15 cm·d wide, every
  0.6–1.2 m. A foot that lands in one drops out from under the robot.

Gaps are where seeing the ground ahead decides the episode: a walker that sees one coming
lengthens or shortens its step; a blind one finds it with its foot. A riser trips a walker that
does not see it, but can also be felt and recovered from.
MuJoCo stores the profile as a heightfield whose rows are identical, so the ground is linear
between samples along x and constant along y, and :func:`height_at` reproduces MuJoCo's
surface exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TerrainConfig:
    length: float = 48.0          # m of track, starting at x_start
    x_start: float = -2.0         # m, track begins behind the spawn point (x = 0)
    resolution: float = 0.05      # m between height samples
    platform: float = 3.0         # m of flat ground from x_start
    levels: int = 6               # difficulty levels 0 .. levels-1, d = level / (levels - 1)
    max_height: float = 0.6       # |height| bound (m); the heightfield spans ±max_height
    segment_length: tuple[float, float] = (2.0, 5.0)
    gap_spacing: tuple[float, float] = (0.6, 1.2)   # m of ground between two gaps
    gap_width: tuple[float, float] = (0.15, 0.30)   # m, at difficulty 0 and 1
    gap_depth: float = 0.5                          # m below the ground around it
    variants: int = 10            # profiles per level in the bank
    seed: int = 0                 # the bank's seed

    @property
    def num_samples(self) -> int:
        return int(round(self.length / self.resolution)) + 1

    def to_dict(self) -> dict:
        return asdict(self)


def make_profile(cfg: TerrainConfig, level: int, rng: np.random.Generator) -> np.ndarray:
    """Heights (m) at ``x_start + k * resolution``, k = 0 .. num_samples - 1."""
    if not 0 <= level < cfg.levels:
        raise ValueError(f"terrain level must be in [0, {cfg.levels - 1}], got {level}")
    d = level / max(cfg.levels - 1, 1)
    n = cfg.num_samples
    h = np.zeros(n)
    k = int(round(cfg.platform / cfg.resolution))
    base = 0.0
    while k < n:
        seg = int(round(rng.uniform(*cfg.segment_length) / cfg.resolution))
        end = min(n, k + seg)
        kind = rng.random()
        if kind < 1 / 3:
            h[k:end] = base
            j = k
            while j < end:
                j += int(round(rng.uniform(*cfg.gap_spacing) / cfg.resolution))
                low, high = cfg.gap_width
                width = int(round(rng.uniform(low, low + (high - low) * d) / cfg.resolution))
                h[j:min(end, j + width)] = base - cfg.gap_depth
                j += width
        elif kind < 2 / 3:
            amp = 0.02 + 0.06 * d
            knots = rng.uniform(-amp, amp, size=(end - k) // 4 + 2)
            xs = np.linspace(0, len(knots) - 1, end - k)
            h[k:end] = base + np.interp(xs, np.arange(len(knots)), knots)
        else:
            j = k
            while j < end:
                tread = int(round(rng.uniform(0.4, 0.9) / cfg.resolution))
                riser = rng.uniform(0.02, 0.02 + 0.13 * d)
                # Drift back towards zero so stairs never leave the heightfield's range.
                sign = -1.0 if base > 0.15 else 1.0 if base < -0.15 else rng.choice([-1.0, 1.0])
                base = base + sign * riser
                h[j:min(end, j + tread)] = base
                j += tread
        k = end
    return np.clip(h, -cfg.max_height, cfg.max_height)


def height_at(profile: np.ndarray, cfg: TerrainConfig, x: np.ndarray) -> np.ndarray:
    """Ground height at positions ``x``; ``profile`` is (N, samples), ``x`` is (N, M).
    Linear between samples, exactly as MuJoCo's heightfield triangles are."""
    samples = profile.shape[1]
    u = (x - cfg.x_start) * (1.0 / cfg.resolution)
    np.clip(u, 0.0, samples - 1.000001, out=u)
    i = u.astype(np.intp)
    w = u - i
    i += (np.arange(profile.shape[0]) * samples)[:, None]    # index into the flattened profiles
    flat = profile.reshape(-1)
    left = flat.take(i)
    return left + (flat.take(i + 1) - left) * w


def make_bank(cfg: TerrainConfig) -> np.ndarray:
    """All profiles, (levels, variants, num_samples), drawn from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    return np.stack([np.stack([make_profile(cfg, level, rng) for _ in range(cfg.variants)])
                     for level in range(cfg.levels)])
