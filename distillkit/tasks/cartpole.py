"""The quick task: cart-pole balancing, with the pole's velocity and mass as privileged state.

It trains in well under a minute on a laptop CPU yet tells the whole story of the course:

- the **teacher** sees exact joint velocities (``joint_vel_rel``) and the randomised pole mass;
- the **student** sees joint positions only (``joint_pos_rel``) with a short history, from which
  velocity can be estimated by finite differences: deployable, but harder.

Field names, rewards, resets and timing follow Isaac Lab's ``Isaac-Cartpole`` (manager-based
cart-pole, ``cartpole_manager_env_cfg.py``), so the same lesson later runs on Isaac Lab. One change:
the pole falling below horizontal also ends the episode as a failure (``fell``), so that failures
are crisp in every chapter; Isaac Lab ends episodes only when the cart leaves its rail.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from distillkit.schema import Field, ObservationSchema
from distillkit.tasks.base import MujocoTask, PhysicsState, uniform

MJCF = """
<mujoco model="cartpole">
  <option timestep="{physics_dt}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <worldbody>
    <light pos="0 -4 6" dir="0 0.6 -1"/>
    <geom name="floor" type="plane" size="6 2 0.1" rgba="0.85 0.85 0.8 1" contype="0" conaffinity="0"/>
    <geom name="rail" type="box" pos="0 0 1" size="3.2 0.02 0.02" rgba="0.3 0.3 0.3 1"
          contype="0" conaffinity="0"/>
    <body name="cart" pos="0 0 1">
      <joint name="slider_to_cart" type="slide" axis="1 0 0" damping="0.1"/>
      <geom name="cart" type="box" size="0.2 0.12 0.08" mass="1.0" rgba="0.2 0.4 0.8 1"
            contype="0" conaffinity="0"/>
      <body name="pole">
        <joint name="cart_to_pole" type="hinge" axis="0 1 0" damping="0.01"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 1" size="0.03" mass="{pole_mass}"
              rgba="0.9 0.5 0.2 1" contype="0" conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="cart_force" joint="slider_to_cart" gear="{max_force}" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


class Cartpole(MujocoTask):
    name = "cartpole"
    version = 1
    physics_dt = 1 / 120
    control_dt = 1 / 60            # Isaac Lab: sim.dt = 1/120, decimation = 2
    episode_length_s = 5.0
    action_dim = 1
    push_dofs = (1,)               # a push (a tap on the pole) changes its angular velocity
    reward_weights = {             # Isaac Lab's RewardsCfg for the cart-pole
        "alive": 1.0,
        "terminating": -2.0,
        "pole_pos": -1.0,
        "cart_vel": -0.01,
        "pole_vel": -0.005,
    }
    nominal_pole_mass = 0.2        # kg
    max_force = 30.0               # N at action = 1
    cart_limit = 3.0               # m, Isaac Lab's cart_out_of_bounds
    reset_ranges = {
        "cart_pos": [-1.0, 1.0],
        "cart_vel": [-0.5, 0.5],
        "pole_angle": [-0.25 * math.pi, 0.25 * math.pi],
        "pole_vel": [-0.25 * math.pi, 0.25 * math.pi],
    }
    randomisation_ranges = {"pole_mass_scale": [0.5, 2.0]}   # per episode; the teacher knows the result

    def __init__(self, num_envs: int):
        super().__init__(num_envs)
        self.pole_mass = np.full(num_envs, self.nominal_pole_mass)

    @classmethod
    def make_schema(cls) -> ObservationSchema:
        return ObservationSchema("cartpole", (
            Field("joint_pos_rel", (2,), "student",
                  "cart position and pole angle: encoders on a real cart-pole; the last 3 samples "
                  "let a policy estimate velocity", history_length=3),
            Field("joint_vel_rel", (2,), "teacher_only",
                  "exact joint velocities from the simulator; the deployed robot has no velocity sensor"),
            Field("pole_mass", (1,), "teacher_only",
                  "hidden physics parameter, randomised per episode; cannot be measured in deployment"),
        ))

    def mjcf(self) -> str:
        return MJCF.format(physics_dt=self.physics_dt, pole_mass=self.nominal_pole_mass,
                           max_force=self.max_force)

    def bind(self, model: mujoco.MjModel) -> None:
        super().bind(model)
        self.pole_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "pole")
        self.nominal_inertia = model.body_inertia[self.pole_body].copy()

    def describe(self):
        return {
            "reset_distribution": self.reset_ranges,
            "randomisation": self.randomisation_ranges,
            "details": {"nominal_pole_mass": self.nominal_pole_mass, "max_force": self.max_force,
                        "cart_limit": self.cart_limit, "fail_pole_angle": math.pi / 2},
        }

    def reset_worlds(self, ids, rng, models):
        low, span = self._draw_ranges()
        if span is not None:
            # uniform(rng, (low, high), n) is low + (high - low) * rng.random(n), and draws in a
            # row take consecutive numbers: one draw for the five ranges gives the same numbers
            # as five calls of uniform, for a fraction of the cost.
            draw = rng.random((5, len(ids)))
            draw *= span
            draw += low
        else:                              # an overridden range that uniform refuses, with its error
            draw = np.stack([uniform(rng, pair, len(ids)) for pair in low])
        qpos, qvel, scale = draw[0:2].T, draw[2:4].T, draw[4]
        mass, inertia = self.nominal_pole_mass * scale, scale[:, None] * self.nominal_inertia
        for row, i in enumerate(ids):
            models[i].body_mass[self.pole_body] = mass[row]
            models[i].body_inertia[self.pole_body] = inertia[row]
        self.pole_mass[ids] = mass
        return qpos, qvel

    def _draw_ranges(self):
        """The five reset ranges in drawing order as (low, high - low) columns, kept until a range
        changes; (ranges, None) when one is not a finite non-negative span."""
        r = self.reset_ranges
        pairs = (r["cart_pos"], r["pole_angle"], r["cart_vel"], r["pole_vel"],
                 self.randomisation_ranges["pole_mass_scale"])
        cached = getattr(self, "_ranges_cache", None)
        if cached is None or cached[0] != pairs:
            ranges = np.array(pairs, dtype=np.float64)
            span = ranges[:, 1:] - ranges[:, :1]
            valid = bool((span >= 0).all() and np.isfinite(span).all())
            cached = (tuple(list(p) for p in pairs), *((ranges[:, :1], span) if valid else (ranges, None)))
            self._ranges_cache = cached
        return cached[1], cached[2]

    def perturb_privileged(self, s, ids, rng, models):
        scale = uniform(rng, self.randomisation_ranges["pole_mass_scale"], len(ids))
        for i, k in zip(ids, scale):
            models[i].body_mass[self.pole_body] = self.nominal_pole_mass * k
            models[i].body_inertia[self.pole_body] = self.nominal_inertia * k
        self.pole_mass[ids] = self.nominal_pole_mass * scale

    def ctrl(self, actions):
        return actions

    def observe(self, s: PhysicsState, last_actions):
        return {
            "joint_pos_rel": s.qpos.copy(),       # default joint positions are 0
            "joint_vel_rel": s.qvel,
            "pole_mass": self.pole_mass[s.ids, None],
        }

    def evaluate(self, s: PhysicsState, actions, last_actions):
        cart_x, pole_angle = s.qpos[:, 0], s.qpos[:, 1]
        failed = (np.abs(cart_x) > self.cart_limit) | (np.abs(pole_angle) > math.pi / 2)
        terms = {
            "alive": (~failed).astype(np.float64),
            "terminating": failed.astype(np.float64),
            "pole_pos": pole_angle ** 2,
            "cart_vel": np.abs(s.qvel[:, 0]),
            "pole_vel": np.abs(s.qvel[:, 1]),
        }
        return terms, failed
