"""Isaac Lab 3.0 (kit-less, Newton physics) behind distillkit's env interface.

``IsaacLabEnv`` wraps a stock manager-based task (``gym.make`` of a ``ManagerBasedRLEnv``) and hands
out the same named :class:`~distillkit.envs.base.StepResult` as the MuJoCo engines. It runs on
``device="cpu"`` through Warp's CPU backend (CI) and on ``"cuda"`` (a GPU); every tensor stays on
that device.

What distillkit changes in the stock task config, and why:

- **Observation groups by role.** The stock ``policy`` group is replaced by three groups named
  after the schema roles, ``student``, ``teacher_only`` and ``critic_only``, whose terms are
  returned by name (``concatenate_terms=False``). The schema is read back from the observation
  manager (group -> term names and dims); each term's role, reason and history come from this
  module's task table, its noise model from the term's own Isaac Lab noise config. Only the
  ``student`` group is corrupted (Isaac Lab's noise); privileged terms are exact.
- **History is kept here**, not by Isaac Lab's history buffers: the terminal observation Isaac Lab
  computes before an auto-reset (``compute_final_obs``) reads those buffers without the final
  sample, and PPO bootstraps time-outs from that observation.
- **Failures and time-outs come from the termination terms**: any non-time-out term (the
  cart-pole's ``cart_out_of_bounds``, the quadruped's ``base_contact``) is ``fell``; ``time_out``
  is ``timeout``. The cart-pole also gets ``pole_fallen`` (pole past horizontal) and a per-episode
  pole-mass randomisation that the teacher observes, as in distillkit's MuJoCo ``cartpole``.
- **Offline assets**: see :mod:`distillkit.assets`; with generated assets the ANYmal LSTM actuator
  net (also in NVIDIA's bucket) is replaced by ``ANYDRIVE_3_SIMPLE_ACTUATOR_CFG``.

Isaac Lab runs one simulation per process: creating an ``IsaacLabEnv`` closes the previous one
(using the closed one afterwards is an error that says so). Isaac Lab's ``reset(seed)`` seeds the
global torch, numpy and Warp generators; its events and noise draw from them.

**Engine logs go to a file.** Isaac Lab prints a table per manager, timings and warnings every time
an env is built (hundreds of lines per env, thousands in a notebook that builds several). Its
imports, env construction, resets, steps and close run inside
:func:`~distillkit.envs.logs.engine_logs`, which sends that output (Python's and the C libraries',
stdout and stderr) to ``runs/logs/isaaclab_*.log`` and prints one line saying where, once per
process. ``DISTILLKIT_ENGINE_LOGS=console`` keeps it on the console.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from distillkit.assets import use_isaac_assets
from distillkit.envs.base import ACTION_LIMIT, VALIDITY_SIGNALS, ActionError, BatchedEnv, Obs, StepResult
from distillkit.envs.logs import engine_logs
from distillkit.schema import ROLES, Field, Noise, ObservationSchema, SchemaError
from distillkit.tasks.spec import TaskSpec

# Asset root first: Isaac Lab reads ISAACSIM_ASSET_ROOT once, when isaaclab.utils.assets is imported.
ASSET_SOURCE, ASSET_ROOT = use_isaac_assets()

with engine_logs("isaaclab"):
    import gymnasium as gym
    import isaaclab
    import isaaclab.envs.mdp as mdp
    import isaaclab_tasks  # noqa: F401  (registers the gym ids)
    from isaaclab.managers import (
        EventTermCfg,
        ManagerTermBase,
        ObservationGroupCfg,
        ObservationTermCfg,
        SceneEntityCfg,
        TerminationTermCfg,
    )
    from isaaclab.utils.noise import GaussianNoiseCfg, UniformNoiseCfg
    from isaaclab_tasks.utils import parse_env_cfg

from distillkit.assets import generator_digest  # noqa: E402


# ------------------------------------------------------------------------ extra observation terms
def body_mass(env, asset_cfg: SceneEntityCfg) -> torch.Tensor:
    """Mass (kg) of the selected bodies: a hidden physics parameter when it is randomised."""
    return env.scene[asset_cfg.name].data.body_mass.torch[:, asset_cfg.body_ids].clone()


def contact_force_norm(env, sensor_cfg: SceneEntityCfg) -> torch.Tensor:
    """Magnitude (N) of the net contact force on each selected body."""
    forces = env.scene.sensors[sensor_cfg.name].data.net_forces_w.torch[:, sensor_cfg.body_ids]
    return forces.norm(dim=-1)


class coarse_height_scan(ManagerTermBase):  # noqa: N801 (Isaac Lab's convention for class-based terms)
    """The stock height scan read at a coarser grid: the rays whose (x, y) fall on multiples of
    ``spacing``. A deployable stand-in for a robot's own terrain sensing (with noise added by the
    observation group)."""

    def __init__(self, cfg: ObservationTermCfg, env):
        super().__init__(cfg, env)
        sensor_cfg = env.scene.sensors[cfg.params["sensor_cfg"].name].cfg
        starts, _ = sensor_cfg.pattern_cfg.func(sensor_cfg.pattern_cfg, "cpu")
        sx, sy = cfg.params["spacing"]
        on_grid = [i for i, (x, y, _) in enumerate(starts.tolist())
                   if abs(x / sx - round(x / sx)) < 1e-6 and abs(y / sy - round(y / sy)) < 1e-6]
        self.rays = torch.tensor(on_grid, device=env.device)

    def __call__(self, env, sensor_cfg: SceneEntityCfg, spacing: tuple[float, float]) -> torch.Tensor:
        return mdp.height_scan(env, sensor_cfg).index_select(1, self.rays)

    def reset(self, env_ids=None) -> None:
        """Stateless (the observation manager calls this on resets)."""


# --------------------------------------------------------------------------------- task table
@dataclass(frozen=True)
class Term:
    """One schema field as an Isaac Lab observation term."""

    name: str
    role: str
    reason: str
    func: Callable
    params: dict = field(default_factory=dict)
    noise: object = None        # an Isaac Lab noise cfg (student terms only)
    clip: tuple | None = None
    history_length: int = 1


@dataclass(frozen=True)
class IsaacTask:
    """How a distillkit task maps onto a stock Isaac Lab task."""

    name: str
    isaac_id: str
    terms: tuple[Term, ...]
    configure: Callable         # edits the parsed env cfg (extra terms, offline actuators)
    ranges: dict[str, tuple[str, str]]   # distillkit range name -> (event term, its parameter)
    push: tuple[str, tuple]              # ("joint", joint names) or ("root", velocity axes)
    reset_transient_steps: int = 0


def _configure_cartpole(cfg) -> list[str]:
    cfg.terminations.pole_fallen = TerminationTermCfg(
        func=mdp.joint_pos_out_of_manual_limit,
        params={"asset_cfg": SceneEntityCfg("robot", joint_names=["cart_to_pole"]), "bounds": (-math.pi / 2, math.pi / 2)})
    cfg.events.randomize_pole_mass = EventTermCfg(
        func=mdp.randomize_rigid_body_mass, mode="reset",
        params={"asset_cfg": SceneEntityCfg("robot", body_names=["pole"]), "mass_distribution_params": (0.5, 2.0),
                "operation": "scale", "recompute_inertia": True})
    return ["terminations.pole_fallen (|pole angle| > pi/2)", "events.randomize_pole_mass (x0.5-2, per episode)"]


def _configure_anymal(cfg) -> list[str]:
    changes = []
    if ASSET_SOURCE == "generated":
        from isaaclab_assets.robots.anymal import ANYDRIVE_3_SIMPLE_ACTUATOR_CFG

        cfg.scene.robot.actuators = {"legs": ANYDRIVE_3_SIMPLE_ACTUATOR_CFG}
        changes.append("actuators: ANYDRIVE_3_SIMPLE_ACTUATOR_CFG (the LSTM net is in NVIDIA's bucket)")
    return changes


CARTPOLE = IsaacTask(
    name="cartpole", isaac_id="Isaac-Cartpole",
    terms=(
        Term("joint_pos_rel", "student", "cart position and pole angle: encoders on a real cart-pole; "
             "the last 3 samples let a policy estimate velocity", mdp.joint_pos_rel, history_length=3),
        Term("joint_vel_rel", "teacher_only", "exact joint velocities from the simulator; the deployed robot "
             "has no velocity sensor", mdp.joint_vel_rel),
        Term("pole_mass", "teacher_only", "hidden physics parameter, randomised per episode; cannot be "
             "measured in deployment", body_mass, {"asset_cfg": SceneEntityCfg("robot", body_names=["pole"])}),
    ),
    configure=_configure_cartpole,
    ranges={"cart_pos": ("reset_cart_position", "position_range"),
            "cart_vel": ("reset_cart_position", "velocity_range"),
            "pole_angle": ("reset_pole_position", "position_range"),
            "pole_vel": ("reset_pole_position", "velocity_range"),
            "pole_mass_scale": ("randomize_pole_mass", "mass_distribution_params")},
    push=("joint", ("cart_to_pole",)),
)

_SCAN = {"sensor_cfg": SceneEntityCfg("height_scanner")}
ANYMAL_ROUGH = IsaacTask(
    name="anymal_rough", isaac_id="Isaac-Velocity-Rough-AnymalD",
    terms=(
        Term("base_ang_vel", "student", "IMU gyroscope", mdp.base_ang_vel,
             noise=UniformNoiseCfg(n_min=-0.2, n_max=0.2), history_length=3),
        Term("projected_gravity", "student", "IMU attitude estimate", mdp.projected_gravity,
             noise=UniformNoiseCfg(n_min=-0.05, n_max=0.05), history_length=3),
        Term("velocity_commands", "student", "the operator's command", mdp.generated_commands,
             {"command_name": "base_velocity"}),
        Term("joint_pos", "student", "joint encoders", mdp.joint_pos_rel,
             noise=UniformNoiseCfg(n_min=-0.01, n_max=0.01), history_length=3),
        Term("joint_vel", "student", "joint encoder velocities", mdp.joint_vel_rel,
             noise=UniformNoiseCfg(n_min=-1.5, n_max=1.5), history_length=3),
        Term("actions", "student", "the policy's own previous actions", mdp.last_action, history_length=3),
        Term("height_scan_coarse", "student", "a noisy 5x3 terrain sample at 0.4 m x 0.5 m spacing: what "
             "onboard depth sensing could give", coarse_height_scan, {**_SCAN, "spacing": (0.4, 0.5)},
             noise=UniformNoiseCfg(n_min=-0.1, n_max=0.1), clip=(-1.0, 1.0)),
        Term("base_lin_vel", "teacher_only", "exact base velocity from the simulator; on the robot only a "
             "drifting estimate exists", mdp.base_lin_vel),
        Term("height_scan", "teacher_only", "exact 17x11 terrain heights at 0.1 m from the simulator's "
             "terrain mesh", mdp.height_scan, _SCAN, clip=(-1.0, 1.0)),
        Term("contact_forces", "teacher_only", "exact foot contact force magnitudes; feet carry no force "
             "sensors", contact_force_norm, {"sensor_cfg": SceneEntityCfg("contact_forces", body_names=".*FOOT")}),
        Term("base_mass", "teacher_only", "base mass randomised at start-up (payload); unknown in deployment",
             body_mass, {"asset_cfg": SceneEntityCfg("robot", body_names=["base"])}),
    ),
    configure=_configure_anymal,
    ranges={"base_velocity_reset": ("reset_base", "velocity_range"),
            "base_pose_reset": ("reset_base", "pose_range"),
            "joint_scale_reset": ("reset_robot_joints", "position_range")},
    push=("root", ("x", "y")),
    reset_transient_steps=5,
)

TASKS = {t.name: t for t in (CARTPOLE, ANYMAL_ROUGH)}
ISAAC_IDS = {t.isaac_id: t.name for t in TASKS.values()}


# ----------------------------------------------------------------------------------- helpers
def _noise_model(cfg) -> Noise | None:
    """distillkit's description of an Isaac Lab additive noise config."""
    if cfg is None:
        return None
    if isinstance(cfg, UniformNoiseCfg) and math.isclose(-cfg.n_min, cfg.n_max):
        return Noise("uniform", float(cfg.n_max))
    if isinstance(cfg, GaussianNoiseCfg) and cfg.mean == 0.0:
        return Noise("gaussian", float(cfg.std))
    raise SchemaError(f"noise config {cfg!r} has no distillkit equivalent (zero-mean uniform or gaussian)")


def _plain(value):
    """A JSON-safe rendering of a manager term's parameter, for the task spec."""
    if isinstance(value, SceneEntityCfg):
        return {"asset": value.name, "joints": value.joint_names, "bodies": value.body_names}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", type(value).__name__)


def _term_entry(term) -> dict:
    """A manager term (event, termination) in the task spec: its function and parameters."""
    return {"func": getattr(term.func, "__name__", type(term.func).__name__), "params": _plain(term.params)}


_live: IsaacLabEnv | None = None   # Isaac Lab runs one simulation per process


class IsaacLabEnv(BatchedEnv):
    """A distillkit task on Isaac Lab.

    Args:
        task: a distillkit task name (``cartpole``, ``anymal_rough``) or its Isaac Lab id.
        num_envs: number of worlds N.
        device: ``"cpu"`` or ``"cuda"`` / ``"cuda:0"``; Isaac Lab simulates there and every tensor
            stays there.
        noise: corrupt the student fields with their noise models (Isaac Lab's corruption).
        cfg_hook: optional function editing the parsed Isaac Lab env cfg before the env is made
            (e.g. a smaller terrain grid for a smoke test); the spec records that it was used.
    """

    engine = "isaaclab"
    tasks = tuple(TASKS)
    features = frozenset({"push", "override_ranges", "perturb_privileged"})

    def __init__(self, task: str = "cartpole", num_envs: int = 64, *, device: str = "cpu", noise: bool = True,
                 cfg_hook: Callable | None = None):
        global _live
        name = ISAAC_IDS.get(task, task)
        if name not in TASKS:
            raise KeyError(f"unknown Isaac Lab task {task!r}; available: {sorted(TASKS)} "
                           f"(Isaac Lab ids {sorted(ISAAC_IDS)})")
        super().__init__(num_envs, device=device, noise=noise)
        self.task = TASKS[name]
        self._closed = False
        if _live is not None and not _live._closed:
            _live.close()

        with engine_logs("isaaclab"):
            cfg = parse_env_cfg(self.task.isaac_id, device=str(self.device), num_envs=num_envs)
            cfg.seed = 0                       # start-up randomisation (masses, friction) is reproducible
            cfg.compute_final_obs = True       # the observation before each auto-reset (true final obs)
            changes = self.task.configure(cfg)
            if cfg_hook is not None:
                cfg_hook(cfg)
                changes.append(f"cfg_hook {getattr(cfg_hook, '__qualname__', repr(cfg_hook))}")
            self._set_observation_groups(cfg)
            self._gym = gym.make(self.task.isaac_id, cfg=cfg)
            self.env = self._gym.unwrapped
            _live = self
            # The first reset of a fresh Isaac Lab 3.0 env loses the joint velocities its reset events
            # write (measured: they read back as zero); from the second on, reset(seed) is repeatable.
            self.env.reset(seed=0)

        self.schema = self._read_schema()
        self.spec = self._read_spec(changes)
        self.reset_transient_steps = self.task.reset_transient_steps
        self.action_dim = self.spec.action_dim
        self.max_episode_steps = int(self.env.max_episode_length)
        self._term_names = list(self.env.reward_manager.active_terms)
        self._history_names = [f.name for f in self.schema.fields if f.history_length > 1]
        self._history: dict[str, torch.Tensor] = {}
        self._noise_scale = 1.0
        self._seeded = False

    # ------------------------------------------------------------------------- construction
    def _set_observation_groups(self, cfg) -> None:
        """Replace the stock groups with one group per role (named after it), terms returned by name."""
        for group in list(vars(cfg.observations)):
            setattr(cfg.observations, group, None)
        for role in ROLES:
            terms = [t for t in self.task.terms if t.role == role]
            if not terms:
                continue
            group = ObservationGroupCfg()
            group.concatenate_terms = False
            group.enable_corruption = self.noise and role == "student"
            for t in terms:
                # Each env gets its own noise config objects, so noise_scale edits stay local.
                noise = None if t.noise is None else type(t.noise)(**vars(t.noise))
                setattr(group, t.name, ObservationTermCfg(func=t.func, params=dict(t.params), noise=noise, clip=t.clip))
            setattr(cfg.observations, role, group)

    def _read_schema(self) -> ObservationSchema:
        """The schema, field shapes as the observation manager reports them."""
        manager = self.env.observation_manager
        table = {t.name: t for t in self.task.terms}
        fields = []
        for role in ROLES:
            if role not in manager.active_terms:
                continue
            for term_name, dims in zip(manager.active_terms[role], manager.group_obs_term_dim[role]):
                t = table[term_name]
                # Noise from the task table, so the schema is the same with the env's noise off.
                fields.append(Field(term_name, tuple(int(d) for d in dims), role, t.reason,
                                    noise=_noise_model(t.noise), history_length=t.history_length))
        # Schema order follows the task table (student fields first), not the group order.
        order = [t.name for t in self.task.terms]
        fields.sort(key=lambda f: order.index(f.name))
        return ObservationSchema(f"isaaclab_{self.task.name}", tuple(fields))

    def _read_spec(self, changes: list[str]) -> TaskSpec:
        """The task spec from the live managers: events (resets, randomisation) and termination
        terms with their parameters, so that changing either changes the digest."""
        env = self.env
        events = env.event_manager
        by_mode = {}
        for mode in events.available_modes:
            for term_name in events.active_terms[mode]:
                term = events.get_term_cfg(term_name)
                entry = _term_entry(term)
                if mode == "interval":
                    entry["interval_range_s"] = list(term.interval_range_s)
                by_mode.setdefault(mode, {})[term_name] = entry
        terminations = env.termination_manager
        rewards = env.reward_manager
        details = {
            "isaac_task": self.task.isaac_id, "assets": ASSET_SOURCE,   # not the device: artifacts move
            "terminations": {n: {**_term_entry(terminations.get_term_cfg(n)),
                                 "time_out": bool(terminations.get_term_cfg(n).time_out)}
                             for n in terminations.active_terms},
            "changes_to_stock_task": changes,
            "reward_scaling": "Isaac Lab multiplies every weighted term by control_dt",
        }
        if ASSET_SOURCE == "generated":
            details["asset_generator"] = generator_digest()
        return TaskSpec(
            task=self.task.name, task_version=1, engine=self.engine, engine_version=isaaclab.__version__,
            physics_dt=float(env.physics_dt), control_dt=float(env.step_dt),
            episode_length_s=float(env.cfg.episode_length_s), action_dim=int(env.action_manager.total_action_dim),
            reward_weights={n: float(rewards.get_term_cfg(n).weight) for n in rewards.active_terms},
            reset_distribution=by_mode.get("reset", {}),
            randomisation={m: v for m, v in by_mode.items() if m != "reset"},
            details=details,
        )

    # ------------------------------------------------------------------------------ public
    # Isaac Lab owns seeding, resets, stepping, noise and auto-reset; this class renames its
    # outputs (groups by role, terminations as validity signals) and keeps the history.
    def reset(self, seed: int | None = None) -> Obs:
        self._check_open()
        if seed is None and not self._seeded:
            seed = 0
        if seed is not None:
            self._seeded = True
        with engine_logs("isaaclab"):
            groups, _ = self.env.reset(seed=seed)
        sample = self._fields(groups)
        self._history = {n: sample[n].unsqueeze(1).expand(-1, self.schema.field(n).history_length,
                                                          *sample[n].shape[1:]).clone()
                         for n in self._history_names}
        self._started = True
        return self._with_history(sample, self._history)

    def step(self, actions: torch.Tensor) -> StepResult:
        self._check_open()
        self._require_reset("step")
        acts = self._actions(actions)
        saturated = acts.abs().amax(dim=1) > ACTION_LIMIT
        acts = acts.clamp(-ACTION_LIMIT, ACTION_LIMIT)
        transient = self.env.episode_length_buf < self.reset_transient_steps

        with engine_logs("isaaclab"):
            groups, _, terminated, time_outs, extras = self.env.step(acts)
        failed = terminated.clone()
        truncated = time_outs & ~failed
        done = failed | truncated
        # Isaac Lab has no public per-term, per-world reward: its manager's step buffer holds it.
        weighted = self.env.reward_manager._step_reward * self.env.step_dt   # (N, terms), as Isaac Lab sums them

        sample = self._fields(groups)
        final_sample = sample
        any_done = bool(done.any())
        if any_done:   # reset worlds: the observation before their reset, computed by Isaac Lab
            before = self._fields(extras["final_obs"])
            final_sample = {n: torch.where(done.view(-1, *[1] * (v.dim() - 1)), before[n], v) for n, v in sample.items()}
        final_history = {n: torch.cat([h[:, 1:], final_sample[n].unsqueeze(1)], dim=1) for n, h in self._history.items()}
        history = final_history
        if any_done:   # a new episode's history is its first sample, repeated
            history = {}
            for n, h in final_history.items():
                fresh = sample[n].unsqueeze(1).expand_as(h)
                history[n] = torch.where(done.view(-1, *[1] * (h.dim() - 1)), fresh, h)
        self._history = history

        flags = torch.stack([failed, truncated, saturated, transient])
        return StepResult(
            obs=self._with_history(sample, history),
            reward=weighted.sum(1),
            reward_terms=dict(zip(self._term_names, weighted.T)),
            terminated=flags[0], truncated=flags[1],
            final_obs=self._with_history(final_sample, final_history),
            validity=dict(zip(VALIDITY_SIGNALS, flags)),
        )

    def observe(self) -> Obs:
        self._check_open()
        self._require_reset("observe")
        # Every field's current sample (noise included, history not), without advancing anything.
        sample = self._fields(self.env.observation_manager.compute(update_history=False))
        history = {n: torch.cat([h[:, :-1], sample[n].unsqueeze(1)], dim=1) for n, h in self._history.items()}
        return self._with_history(sample, history)

    @property
    def noise_scale(self) -> float:
        """Multiplies every student noise model (a sensor-noise perturbation)."""
        return self._noise_scale

    @noise_scale.setter
    def noise_scale(self, scale: float) -> None:
        self._noise_scale = float(scale)
        manager = self.env.observation_manager
        # The manager works on its own copy of the cfg and offers no getter for observation
        # terms: its term list is the one handle on the noise configs it applies.
        for term_name, term_cfg in zip(manager.active_terms.get("student", []),
                                       manager._group_obs_term_cfgs.get("student", [])):
            base = next((t.noise for t in self.task.terms if t.name == term_name), None)
            if base is not None and term_cfg.noise is not None:   # None: the env's noise is off
                term_cfg.noise.n_min, term_cfg.noise.n_max = base.n_min * scale, base.n_max * scale

    @property
    def episode_step(self) -> torch.Tensor:
        return self.env.episode_length_buf

    def push(self, ids, velocity_change) -> None:
        """Add ``velocity_change`` (len(ids), len(push dofs)) to the task's push degrees of freedom
        (the cart-pole's pole joint, the quadruped's base x/y velocity); takes effect at the next step."""
        self._check_open()
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(-1)
        kind, dofs = self.task.push
        change = torch.as_tensor(velocity_change, dtype=torch.float32, device=self.device)
        if tuple(change.shape) != (len(ids), len(dofs)):
            raise ValueError(f"{self.spec.task}: velocity_change must have shape {(len(ids), len(dofs))}, "
                             f"got {tuple(change.shape)}")
        robot = self.env.scene["robot"]
        if kind == "joint":
            joints = [robot.joint_names.index(j) for j in dofs]
            velocity = robot.data.joint_vel.torch[ids][:, joints] + change
            robot.write_joint_velocity_to_sim_index(velocity=velocity, joint_ids=joints, env_ids=ids)
        else:
            velocity = robot.data.root_vel_w.torch[ids].clone()
            axes = ["x", "y", "z", "roll", "pitch", "yaw"]
            velocity[:, [axes.index(a) for a in dofs]] += change
            robot.write_root_velocity_to_sim_index(root_velocity=velocity, env_ids=ids)

    def override_ranges(self, ranges: dict[str, list]) -> None:
        """Change reset / randomisation ranges for the next resets, by distillkit name (e.g. the
        cart-pole's ``pole_mass_scale``); the spec follows."""
        self._check_open()
        events = self.env.event_manager
        for key, value in ranges.items():
            if key not in self.task.ranges:
                raise KeyError(f"task {self.spec.task!r} on isaaclab has no range {key!r}; "
                               f"it has {sorted(self.task.ranges)}")
            term_name, param = self.task.ranges[key]
            term = events.get_term_cfg(term_name)
            term.params[param] = value if isinstance(value, dict) else tuple(value)
            events.set_term_cfg(term_name, term)
        self.spec = self._read_spec(self.spec.details["changes_to_stock_task"])

    def perturb_privileged(self, ids, seed: int = 0) -> None:
        """Change only what a deployed robot cannot sense in worlds ``ids`` (the randomised mass
        the teacher observes: the cart-pole's pole, the quadruped's base); state is untouched."""
        self._check_open()
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(-1)
        term_name = next(t.name for t in self.task.terms if t.func is body_mass)
        asset_cfg = next(t.params["asset_cfg"] for t in self.task.terms if t.name == term_name)
        robot = self.env.scene["robot"]
        bodies = [robot.body_names.index(b) for b in asset_cfg.body_names]
        generator = torch.Generator().manual_seed(seed)
        scale = 0.5 + 1.5 * torch.rand(len(ids), len(bodies), generator=generator)
        masses = robot.data.body_mass.torch[ids][:, bodies] * scale.to(self.device)
        robot.set_masses_index(masses=masses, body_ids=bodies, env_ids=ids)

    def close(self) -> None:
        global _live
        if not self._closed:
            with engine_logs("isaaclab"):
                self._gym.close()
            self._closed = True
        if _live is self:
            _live = None

    # ----------------------------------------------------------------------------- helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this Isaac Lab env ({self.task.isaac_id}) is closed: Isaac Lab runs one "
                               f"simulation per process, and creating another env closes the previous one")

    def _actions(self, actions) -> torch.Tensor:
        """``actions`` as float32 on the env's device, or a clear error."""
        acts = torch.as_tensor(actions, device=self.device).to(torch.float32)
        want = (self.num_envs, self.action_dim)
        if tuple(acts.shape) != want:
            raise ActionError.bad_shape(self.spec.task, want, tuple(acts.shape))
        finite = torch.isfinite(acts).all(dim=1)
        if not bool(finite.all()):
            envs = torch.nonzero(~finite).flatten()
            raise ActionError.not_finite(self.spec.task, envs.tolist(), acts[envs[0]].tolist())
        return acts

    def _fields(self, groups: dict) -> Obs:
        """Isaac Lab's per-group term dicts -> one dict of fields."""
        out = {}
        for role in ROLES:
            out.update(groups.get(role, {}))
        return out

    def _with_history(self, sample: Obs, history: dict[str, torch.Tensor]) -> Obs:
        """The observation in schema order, history fields as (N, history, *shape)."""
        return {f.name: history[f.name] if f.name in history else sample[f.name] for f in self.schema.fields}
