"""Assets for the Isaac Lab engine: stock ones when reachable, generated ones otherwise.

Isaac Lab 3.0 reads its robots and ground plane from NVIDIA's asset bucket at run time
(``ISAACSIM_ASSET_ROOT``, else a URL in its kit file). Without internet that fails with a
``FileNotFoundError``. :func:`use_isaac_assets` decides, once per process and before Isaac Lab is
imported (it reads ``ISAACSIM_ASSET_ROOT`` once, at import), where assets come from:

- ``generated`` (what CI and offline machines get): this repo writes USD stand-ins
  (:mod:`distillkit.assets.usd`) into a cache folder on first use and points
  ``ISAACSIM_ASSET_ROOT`` at it. Nothing third-party is stored in the repo.
- ``stock``: NVIDIA's assets. With internet access that is what ``auto`` picks; the robots
  differ (real ANYmal-D meshes, masses and its LSTM actuator net), so numbers differ from a
  generated-asset run. Artifacts record which source they were made with (``TaskSpec.details``).
- ``ISAACSIM_ASSET_ROOT`` already set by the user: used as it is (source ``user``).

Choose with ``DISTILLKIT_ISAAC_ASSETS=auto|generated|stock`` (default ``auto``: stock if the bucket
answers within a few seconds, else generated). The cache folder is
``$DISTILLKIT_ASSET_CACHE`` or ``~/.cache/distillkit/isaac_assets``.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from distillkit.assets import usd

SOURCES = ("auto", "generated", "stock")
STOCK_ROOT = "https://omniverse-content-production.s3-us-west-2.amazonaws.com/Assets/Isaac/6.2"

_chosen: tuple[str, str] | None = None   # (source, root) once decided for this process


def generator_digest() -> str:
    """Hash of the code that writes the assets: a new version gets a new cache folder."""
    return hashlib.sha256(inspect.getsource(usd).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    base = os.environ.get("DISTILLKIT_ASSET_CACHE") or Path.home() / ".cache" / "distillkit" / "isaac_assets"
    return Path(base) / generator_digest()


def build_assets(root: Path | None = None) -> Path:
    """Write every generated asset under ``root`` (default: the cache folder) unless present.
    Files are written to a temporary name and renamed, so a killed run leaves no torn file."""
    root = cache_dir() if root is None else Path(root)
    for relative, write in usd.ASSETS.items():
        target = root / relative
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{os.getpid()}.{target.name}")
        write(partial)
        os.replace(partial, target)
    return root


def stock_reachable(timeout: float = 3.0) -> bool:
    """Whether NVIDIA's asset bucket accepts a TCP connection (no data is fetched)."""
    host = urlparse(STOCK_ROOT).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def use_isaac_assets(source: str | None = None) -> tuple[str, str]:
    """Decide where Isaac Lab's assets come from and set ``ISAACSIM_ASSET_ROOT`` accordingly.
    Returns ``(source, root)``; ``source`` is ``generated``, ``stock`` or ``user``. Call it before
    anything imports ``isaaclab``; later calls return the first decision."""
    global _chosen
    source = source or os.environ.get("DISTILLKIT_ISAAC_ASSETS", "auto")
    if source not in SOURCES:
        raise ValueError(f"DISTILLKIT_ISAAC_ASSETS must be one of {SOURCES}, got {source!r}")
    if _chosen is not None:
        return _chosen
    user_root = os.environ.get("ISAACSIM_ASSET_ROOT")
    if user_root:
        _chosen = ("user", user_root)
        return _chosen
    if source == "auto":
        source = "stock" if stock_reachable() else "generated"
    root = STOCK_ROOT if source == "stock" else str(build_assets())
    if "isaaclab.utils.assets" in sys.modules:
        imported = sys.modules["isaaclab.utils.assets"].NUCLEUS_ASSET_ROOT_DIR
        if imported != root:
            raise RuntimeError(
                f"isaaclab was imported before distillkit chose its asset root: it reads from {imported!r}, "
                f"distillkit wants {root!r} ({source}). Import distillkit.envs.isaaclab (or call "
                f"distillkit.assets.use_isaac_assets()) before isaaclab, or set ISAACSIM_ASSET_ROOT yourself.")
    os.environ["ISAACSIM_ASSET_ROOT"] = root
    _chosen = (source, root)
    return _chosen


__all__ = ["SOURCES", "build_assets", "cache_dir", "generator_digest", "stock_reachable", "use_isaac_assets"]
