"""The flagship: a planar biped tracking a forward-velocity command over procedurally generated
rough terrain (bumps, stairs and gaps), with rewards in the style of Isaac Lab's velocity task.

Why planar: its physics is cheap (a handful of contacts: each foot touches the ground through a
heel and a toe sphere, which MuJoCo collides with the heightfield about twice as fast as a
capsule foot), so a PPO teacher learns a gait on a 2-core CPU, and gaps and stairs still make
terrain knowledge matter.

The task is built so that the privileged information *decides* the result and is *partly
recoverable* by a student, as in Lee et al. 2020 and Miki et al. 2022 (a student with
proprioception and a noisy terrain sensor, distilled from a teacher that reads the exact state):

- the **student** reads what the robot carries: joint encoders (0.04 rad and 0.4 rad/s noise),
  IMU (pitch rate, 0.2 rad/s noise; gravity direction, 0.08), the speed command, its own last
  actions, and its own short depth scan (``scan_ahead``: 7 heights up to 0.6 m ahead, 6 cm noise,
  and 30 % of readings replaced by outliers), each with a 6-step history. A gap shows in that
  scan, through the outliers, to a policy that learns which readings to trust over its history. Whether a student supervised by
  a teacher that knows learns that better than reinforcement learning on the same inputs is
  what the course's teacher and imitation claims measure (``docs/results.md``).
- the **teacher** also reads, from the simulator:

  * ``proprio_exact``: the same joint angles and velocities, pitch rate and gravity direction
    without sensor noise (version 5). RL on noisy sensors must learn to filter them; a teacher
    that reads the exact state learns the gait first, and its student learns to filter by
    imitation. History makes it inferable (averaging over the 6 noisy steps). Version 8 doubles
    the student's proprioceptive noise of versions 5-6, so that RL on the student's inputs must
    filter much noisier readings while the teacher reads them exact (whether that decides the
    teacher claim is measured in ``docs/results.md``).

  * ``height_scan``: exact terrain heights 0.1 m apart from 0.5 m behind to 1.5 m ahead. It
    decides episodes: a third of the track is broken by gaps (0.15-0.24 m wide on the nominal
    levels 0-3, 0.5 m deep) that a foot must step over: the teacher sees them exactly and
    early, the student only in its short, noisy scan. A riser (up to 10 cm nominal, 15 cm on the hardest levels)
    trips a walker that does not lift its foot in time; that one the student can feel and
    recover from (its history shows the stumble).
  * ``base_lin_vel``: the true base velocity. The reward is for tracking the commanded speed;
    a real robot only estimates its speed (from leg kinematics, with slip and drift). History
    makes it partly inferable (joint velocities during stance).
  * ``foot_contact_forces``: exact normal forces. Which foot carries the robot, and how firmly:
    partly inferable from joint torques and motion; the robot has no foot force sensors.
  * ``friction`` (0.4-1.25, slippery to rubbery) and ``payload_mass`` (0-30 kg on a ~23 kg
    robot): hidden physics that change how hard to push and how fast the feet may swing;
    inferable only from how the body answered the last actions, i.e. from history (RMA's
    extrinsics). The range reaches heavy loads, where a policy that must infer the payload
    from history has the most to lose (version 6; 0-20 kg in version 5, 0-10 kg before); the
    friction floor of 0.4 keeps the privileged teacher a reliable expert on ice-like ground.

  The teacher's actor passes these privileged fields through an encoder to an 8-value latent
  first, as in RMA and Lee et al. 2020 (``distillkit.results.budgets``); its students learn to act
  like it, or to estimate that latent from their history (chapter 7).

- the **critic** additionally reads the terrain level and the feet's air time (the reward's inputs).

Field names follow Isaac Lab's velocity task (``base_lin_vel``, ``base_ang_vel``,
``projected_gravity``, ``velocity_commands``, ``joint_pos``, ``joint_vel``, ``actions``,
``height_scan``); in the plane their shapes are smaller: x and z components, pitch rate only,
and a forward-speed command.

Each episode starts with 0.2 s in which the robot settles in its default pose whatever the policy
commands (version 4): those steps are flagged ``reset_transient``, and the default mask rules leave
them out of the imitation loss.

Success (:attr:`WalkerRough.tracking_tolerance`): the episode does not fall *and* its mean
absolute forward-speed error stays within the tolerance; a robot that stands still fails.

Training may use a terrain curriculum (:meth:`WalkerRough.start_curriculum`, as Isaac Lab's
``terrain_levels_vel``): every world starts on level 0 and moves up after an episode that walked
far enough without falling, down after a fall, up to the hardest level (5; evaluation draws
levels 0-3). It is a setting of the training run, recorded in the teacher's artifact; the task
spec, and so every evaluation, is the same with or without it.
"""

from __future__ import annotations

import numpy as np

from distillkit.schema import Field, Noise, ObservationSchema
from distillkit.tasks.base import MujocoTask, PhysicsState, uniform
from distillkit.tasks.terrain import TerrainConfig, height_at, make_bank

JOINTS = ("hip_left", "knee_left", "ankle_left", "hip_right", "knee_right", "ankle_right")
DEFAULT_JOINT_POS = np.array([0.2, -0.4, 0.2, 0.2, -0.4, 0.2])
JOINT_RANGES = {"hip": (-0.9, 1.6), "knee": (-2.4, 0.0), "ankle": (-0.8, 0.8)}

LEG = """
      <body name="thigh_{side}" pos="0 0 -0.2">
        <joint name="hip_{side}" range="{hip}"/>
        <geom name="thigh_{side}" type="capsule" fromto="0 0 0 0 0 -0.45" size="0.05" rgba="{rgba}"/>
        <body name="shin_{side}" pos="0 0 -0.45">
          <joint name="knee_{side}" range="{knee}"/>
          <geom name="shin_{side}" type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04" rgba="{rgba}"/>
          <body name="foot_{side}" pos="0 0 -0.5">
            <joint name="ankle_{side}" range="{ankle}"/>
            <!-- the foot's shape and mass; it touches the ground through a heel and a toe sphere -->
            <geom name="foot_{side}" type="capsule" fromto="-0.06 0 0 0.14 0 0" size="0.045" rgba="{rgba}"
                  contype="0" conaffinity="0"/>
            <geom name="heel_{side}" type="sphere" pos="-0.06 0 0" size="0.045" rgba="{rgba}"/>
            <geom name="toe_{side}" type="sphere" pos="0.14 0 0" size="0.045" rgba="{rgba}"/>
            <site name="foot_{side}" type="capsule" fromto="-0.06 0 0 0.14 0 0" size="0.05" rgba="0 0 0 0"/>
          </body>
        </body>
      </body>"""

MJCF = """
<mujoco model="walker_rough">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics_dt}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default>
    <joint type="hinge" axis="0 -1 0" damping="2" armature="0.02"/>
    <geom contype="1" conaffinity="0" condim="3" friction="1 0.05 0.05"/>
    <position kp="{kp}" forcerange="-{max_torque} {max_torque}"/>
  </default>
  <asset>
    <hfield name="terrain" nrow="3" ncol="{ncol}" size="{half_length} 0.6 {elevation} 0.2"/>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256"
             rgb1="0.45 0.5 0.45" rgb2="0.55 0.6 0.55"/>
    <material name="ground" texture="grid" texrepeat="40 1"/>
  </asset>
  <worldbody>
    <light pos="0 -6 8" dir="0 0.6 -1" mode="trackcom"/>
    <geom name="terrain" type="hfield" hfield="terrain" pos="{center} 0 {bottom}" material="ground"
          contype="0" conaffinity="1"/>
    <body name="torso" pos="0 0 1.2">
      <camera name="side" pos="0 -4 0.3" xyaxes="1 0 0 0 0 1" mode="trackcom"/>
      <joint name="rootx" type="slide" axis="1 0 0" damping="0" armature="0"/>
      <!-- ref = body height, so qpos of rootz is the torso's absolute height -->
      <joint name="rootz" type="slide" axis="0 0 1" damping="0" armature="0" ref="1.2"/>
      <joint name="rooty" type="hinge" axis="0 1 0" damping="0" armature="0"/>
      <geom name="torso" type="capsule" fromto="0 0 -0.2 0 0 0.2" size="0.07" rgba="0.3 0.45 0.7 1"/>
      {legs}
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
  <sensor>
    <touch name="touch_left" site="foot_left"/>
    <touch name="touch_right" site="foot_right"/>
    {torque_sensors}
  </sensor>
</mujoco>
"""


class WalkerRough(MujocoTask):
    name = "walker_rough"
    # 8: student proprioception twice as noisy again (7, hidden motor strength, was reverted: it lowered
    # the teacher as much as the baseline; 6: payloads to 30 kg; 5: friction from 0.4, payloads to 20 kg,
    # student sensors twice as noisy, exact proprioception for the teacher; 4: settles in its default
    # pose after a reset; 3: gaps; 2: proprioceptive student)
    version = 8
    physics_dt = 0.01              # stable with these gains and contacts; 0.005 costs 1.7x the CPU time
    control_dt = 0.02              # Isaac Lab's velocity task: 50 Hz control
    episode_length_s = 20.0
    action_dim = 6
    # After a reset the robot holds its default pose for 0.2 s (the joints start up to 0.1 rad off
    # it) before the policy takes over, as a real biped stands up under a stand controller. Without
    # it a v3 teacher's first actions from an awkward start could tip it over backwards: the most
    # common of its falls, and none of them about privilege.
    reset_transient_steps = 10
    hold_pose_while_settling = True
    push_dofs = (0, 1)             # a push changes the base velocity (x, z)
    action_scale = 0.6             # rad of joint target per unit action, around DEFAULT_JOINT_POS
    kp, max_torque = 120.0, 120.0  # position actuators: N·m/rad and N·m
    nominal_height = 1.2           # m, torso centre above the ground when standing
    reward_weights = {
        "track_lin_vel_x_exp": 2.0,
        "alive": 0.5,
        "lin_vel_z_l2": -0.2,
        "ang_vel_l2": -0.05,
        "flat_orientation_l2": -1.0,
        "joint_torques_l2": -2e-5,
        "action_rate_l2": -0.01,
        "feet_air_time": 1.0,
        "termination": -10.0,
    }
    tracking_sigma = 0.5           # m/s, width of the exp tracking kernel
    tracking_tolerance = 0.25      # m/s: success needs the episode's mean |v_x - command| below this
    air_time_target = 0.4          # s, steps longer than this are rewarded
    fail_height, fail_pitch = 0.7, 0.8
    reset_ranges = {
        "terrain_level": [0, 3],
        "command_vx": [0.4, 1.2],
        "joint_pos_offset": [-0.1, 0.1],
        "base_vel": [-0.1, 0.1],
    }
    randomisation_ranges = {"friction": [0.4, 1.25], "payload_mass": [0.0, 30.0]}
    scan_teacher = np.round(np.arange(-0.5, 1.5001, 0.1), 3)    # 21 exact points, 0.1 m apart
    scan_student = np.round(np.arange(0.0, 0.6001, 0.1), 3)     # 7 points of the robot's own sensor
    scan_noise = Noise("gaussian", 0.06, outliers=0.3, outlier_range=0.5)
    unseen_from = 0.8              # m ahead of the base: beyond the student's scan (perturb_privileged)
    proprio_history = 6            # control steps of proprioceptive history the student reads
    # Training's terrain curriculum (start_curriculum), as Isaac Lab's terrain_levels_vel: a world
    # moves one level up after an episode that walked this share of command x episode length
    # without falling, one level down after a fall; one that masters the top level restarts anywhere.
    curriculum_promote = 0.8

    def __init__(self, num_envs: int, terrain: TerrainConfig | None = None):
        super().__init__(num_envs)
        self.terrain = t = terrain or TerrainConfig()
        self.bank = make_bank(t)
        # What MuJoCo stores: heights normalised to [0, 1], repeated on each heightfield row.
        self.bank_hfield = ((self.bank + t.max_height) / (2 * t.max_height)).astype(np.float32)
        n = num_envs
        self.profiles = np.zeros((n, self.terrain.num_samples))
        self.level = np.zeros(n, dtype=np.int64)
        self.command = np.zeros(n)
        self.friction = np.ones(n)
        self.payload = np.zeros(n)
        self.air_time = np.zeros((n, 2))
        self.base_x = np.zeros(n)                 # where each world's robot is (it spawns at x = 0)
        self.fell = np.zeros(n, dtype=bool)       # whether its last step was a fall
        self.curriculum_levels: np.ndarray | None = None

    @classmethod
    def make_schema(cls) -> ObservationSchema:
        proprio = dict(history_length=cls.proprio_history)
        return ObservationSchema("walker_rough", (
            Field("joint_pos", (6,), "student", "joint encoders, relative to the default pose",
                  noise=Noise("gaussian", 0.04), **proprio),
            Field("joint_vel", (6,), "student", "joint encoder velocities",
                  noise=Noise("gaussian", 0.4), **proprio),
            Field("base_ang_vel", (1,), "student", "IMU gyroscope (pitch rate)",
                  noise=Noise("gaussian", 0.2), **proprio),
            Field("projected_gravity", (2,), "student", "IMU gravity direction in the base frame (x, z)",
                  noise=Noise("gaussian", 0.08), **proprio),
            Field("velocity_commands", (1,), "student", "the operator's forward-speed command (m/s)"),
            Field("actions", (6,), "student", "the policy's own last actions", **proprio),
            Field("scan_ahead", (len(cls.scan_student),), "student",
                  "the robot's own depth sensor: terrain heights 0.1 m apart up to 0.6 m ahead, "
                  "6 cm noise and 30 % outliers (reflections, missed returns)",
                  noise=cls.scan_noise, **proprio),
            Field("proprio_exact", (15,), "teacher_only",
                  "joint angles and velocities, pitch rate and gravity direction without sensor noise, "
                  "read from the simulator's state"),
            Field("height_scan", (len(cls.scan_teacher),), "teacher_only",
                  "exact terrain heights 0.1 m apart up to 1.5 m ahead, read from the simulator's map; "
                  "the robot has no terrain sensor"),
            Field("base_lin_vel", (2,), "teacher_only",
                  "true base velocity (x, z); a real robot only estimates it, with drift"),
            Field("foot_contact_forces", (2,), "teacher_only",
                  "exact normal contact forces (N); the robot has no foot force sensors"),
            Field("friction", (1,), "teacher_only", "hidden ground friction (0.4 slippery to 1.25), randomised per episode"),
            Field("payload_mass", (1,), "teacher_only", "hidden payload on the torso (0-30 kg), randomised per episode"),
            Field("terrain_level", (1,), "critic_only",
                  "difficulty of the episode's terrain, a label from the generator"),
            Field("feet_air_time", (2,), "critic_only",
                  "time since each foot left the ground, which the air-time reward depends on"),
        ))

    def mjcf(self) -> str:
        t = self.terrain
        rng = lambda lo_hi: f"{lo_hi[0]} {lo_hi[1]}"
        legs = "".join(LEG.format(side=side, rgba=rgba, hip=rng(JOINT_RANGES["hip"]),
                                  knee=rng(JOINT_RANGES["knee"]), ankle=rng(JOINT_RANGES["ankle"]))
                       for side, rgba in (("left", "0.8 0.55 0.35 1"), ("right", "0.65 0.45 0.3 1")))
        actuators = "\n    ".join(
            f'<position name="{j}" joint="{j}" ctrlrange="{rng(JOINT_RANGES[j.split("_")[0]])}"/>'
            for j in JOINTS)
        sensors = "\n    ".join(f'<actuatorfrc name="torque_{j}" actuator="{j}"/>' for j in JOINTS)
        return MJCF.format(
            physics_dt=self.physics_dt, kp=self.kp, max_torque=self.max_torque,
            ncol=t.num_samples, half_length=t.length / 2, elevation=2 * t.max_height,
            center=t.x_start + t.length / 2, bottom=-t.max_height,
            legs=legs, actuators=actuators, torque_sensors=sensors)

    def bind(self, model) -> None:
        super().bind(model)
        import mujoco

        self.torso_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self.nominal_torso_mass = float(model.body_mass[self.torso_body])
        self.hfield_rows = int(model.hfield_nrow[0])
        # The MJCF declares touch sensors (left, right), then one torque sensor per joint, in order.
        slices = self._sensor_slices
        self.touch_sensors = slice(slices["touch_left"].start, slices["touch_right"].stop)
        self.torque_sensors = slice(slices[f"torque_{JOINTS[0]}"].start, slices[f"torque_{JOINTS[-1]}"].stop)

    def describe(self):
        return {
            "reset_distribution": self.reset_ranges,
            "randomisation": self.randomisation_ranges,
            "details": {
                "terrain": self.terrain.to_dict(),
                "action_scale": self.action_scale, "kp": self.kp, "max_torque": self.max_torque,
                "default_joint_pos": DEFAULT_JOINT_POS.tolist(),
                "scan_teacher": self.scan_teacher.tolist(), "scan_student": self.scan_student.tolist(),
                "unseen_from": self.unseen_from, "proprio_history": self.proprio_history,
                "tracking_sigma": self.tracking_sigma, "tracking_tolerance": self.tracking_tolerance,
                "air_time_target": self.air_time_target,
                "fail_height": self.fail_height, "fail_pitch": self.fail_pitch,
                "settle_steps": self.reset_transient_steps, "hold_pose_while_settling": self.hold_pose_while_settling,
            },
        }

    # ------------------------------------------------------------------------------ episodes
    def start_curriculum(self):
        self.curriculum_levels = np.zeros(self.num_envs, dtype=np.int64)
        return {"kind": "terrain_levels", "start_level": 0, "levels": self.terrain.levels,
                "promote_after_walking": self.curriculum_promote, "demote_after": "fall"}

    def curriculum_state(self):
        return self.curriculum_levels.copy()

    def restore_curriculum(self, state):
        state = np.asarray(state)
        expected = f"expected {self.num_envs} levels in 0..{self.terrain.levels - 1}"
        if state.shape != (self.num_envs,):
            raise ValueError(f"curriculum levels: {expected}, got shape {state.shape}")
        if state.min() < 0 or state.max() >= self.terrain.levels:
            raise ValueError(f"curriculum levels: {expected}, got values {state.min()}..{state.max()}")
        self.curriculum_levels = state.astype(np.int64)

    def _curriculum_step(self, ids, rng):
        """The next level of worlds ``ids`` from the episode they just ended."""
        levels = self.curriculum_levels[ids]
        walked = self.base_x[ids] >= self.curriculum_promote * self.command[ids] * self.episode_length_s
        up = walked & ~self.fell[ids] & (self.command[ids] > 0)     # command 0: no episode yet
        levels = levels + up - self.fell[ids]
        top = self.terrain.levels - 1
        mastered = levels > top
        levels[mastered] = rng.integers(0, top + 1, size=int(mastered.sum()))
        levels = np.clip(levels, 0, top)
        self.curriculum_levels[ids] = levels
        return levels

    def reset_worlds(self, ids, rng, models):
        n = len(ids)
        r, t = self.reset_ranges, self.terrain
        if self.curriculum_levels is None:
            levels = rng.integers(r["terrain_level"][0], r["terrain_level"][1] + 1, size=n)
        else:
            levels = self._curriculum_step(ids, rng)
        variants = rng.integers(0, t.variants, size=n)
        for row, i in enumerate(ids):
            self.profiles[i] = self.bank[levels[row], variants[row]]
            models[i].hfield_data.reshape(self.hfield_rows, -1)[:] = self.bank_hfield[levels[row], variants[row]]
        self.level[ids] = levels
        self.command[ids] = uniform(rng, r["command_vx"], n)
        self.friction[ids] = uniform(rng, self.randomisation_ranges["friction"], n)
        self.payload[ids] = uniform(rng, self.randomisation_ranges["payload_mass"], n)
        for row, i in enumerate(ids):
            models[i].geom_friction[:, 0] = self.friction[i]
            models[i].body_mass[self.torso_body] = self.nominal_torso_mass + self.payload[i]
        self.air_time[ids] = 0.0
        self.base_x[ids], self.fell[ids] = 0.0, False

        qpos = np.zeros((n, 9))
        qpos[:, 1] = self.nominal_height + 0.02       # spawn on the flat platform, just above it
        qpos[:, 3:] = DEFAULT_JOINT_POS + uniform(rng, r["joint_pos_offset"], (n, 6))
        qvel = np.zeros((n, 9))
        qvel[:, :3] = uniform(rng, r["base_vel"], (n, 3))
        return qpos, qvel

    def perturb_privileged(self, s, ids, rng, models):
        """New friction and payload, and new terrain from ``unseen_from`` ahead of the base on
        (beyond the student's scan, within the teacher's): everything the teacher can sense and the
        student cannot."""
        t = self.terrain
        self.friction[ids] = uniform(rng, self.randomisation_ranges["friction"], len(ids))
        self.payload[ids] = uniform(rng, self.randomisation_ranges["payload_mass"], len(ids))
        for row, i in enumerate(ids):
            models[i].geom_friction[:, 0] = self.friction[i]
            models[i].body_mass[self.torso_body] = self.nominal_torso_mass + self.payload[i]
            base_x = s.qpos[row, 0]
            first = int(np.ceil((base_x + self.unseen_from - t.x_start) / t.resolution))
            bumps = rng.uniform(-0.15, 0.15, size=self.profiles.shape[1] - first)
            self.profiles[i, first:] = np.clip(self.profiles[i, first:] + bumps, -t.max_height, t.max_height)
            normalised = ((self.profiles[i] + t.max_height) / (2 * t.max_height)).astype(np.float32)
            models[i].hfield_data.reshape(self.hfield_rows, -1)[:] = normalised

    def ctrl(self, actions):
        return DEFAULT_JOINT_POS + self.action_scale * actions

    # ------------------------------------------------------------------------- observations
    def _base(self, s: PhysicsState):
        """Base position (x, z), pitch, its sine and cosine, and base-frame velocity (vx, vz)."""
        x, z, pitch = s.qpos[:, 0], s.qpos[:, 1], s.qpos[:, 2]
        vx, vz = s.qvel[:, 0], s.qvel[:, 1]
        c, sn = np.cos(pitch), np.sin(pitch)
        return x, z, pitch, sn, c, c * vx - sn * vz, sn * vx + c * vz

    def observe(self, s: PhysicsState, last_actions):
        x, z, pitch, sn, c, vx_b, vz_b = self._base(s)
        offsets = np.concatenate([self.scan_teacher, self.scan_student])
        ground = height_at(self.profiles[s.ids], self.terrain, x[:, None] + offsets)
        scans = (z - self.nominal_height)[:, None] - ground
        scan, scan_ahead = scans[:, :len(self.scan_teacher)], scans[:, len(self.scan_teacher):]
        joint_pos, joint_vel = s.qpos[:, 3:] - DEFAULT_JOINT_POS, s.qvel[:, 3:]
        pitch_rate, gravity = s.qvel[:, 2:3], np.stack([sn, -c], axis=1)
        return {
            "joint_pos": joint_pos,
            "joint_vel": joint_vel,
            "base_ang_vel": pitch_rate,
            "projected_gravity": gravity,
            "velocity_commands": self.command[s.ids, None],
            "actions": last_actions,
            "scan_ahead": scan_ahead,
            # the same readings before the schema adds the student's sensor noise
            "proprio_exact": np.concatenate([joint_pos, joint_vel, pitch_rate, gravity], axis=1),
            "height_scan": scan,
            "base_lin_vel": np.stack([vx_b, vz_b], axis=1),
            "foot_contact_forces": s.sensordata[:, self.touch_sensors],
            "friction": self.friction[s.ids, None],
            "payload_mass": self.payload[s.ids, None],
            "terrain_level": self.level[s.ids, None] * (1.0 / max(self.terrain.levels - 1, 1)),
            "feet_air_time": self.air_time[s.ids],
        }

    # ------------------------------------------------------------------------------ rewards
    def evaluate(self, s: PhysicsState, actions, last_actions):
        x, z, pitch, sn, c, vx_b, vz_b = self._base(s)
        height = z - height_at(self.profiles, self.terrain, x[:, None])[:, 0]
        failed = (height < self.fail_height) | (np.abs(pitch) > self.fail_pitch)
        self.base_x[s.ids], self.fell[s.ids] = x, failed

        contact = s.sensordata[:, self.touch_sensors] > 1.0
        first_contact = contact & (self.air_time > 0.0)
        air_reward = ((self.air_time - self.air_time_target) * first_contact).sum(axis=1)
        self.air_time = np.where(contact, 0.0, self.air_time + self.control_dt)

        torques = s.sensordata[:, self.torque_sensors]
        terms = {
            "track_lin_vel_x_exp": np.exp(-((s.qvel[:, 0] - self.command) / self.tracking_sigma) ** 2),
            "alive": (~failed).astype(np.float64),
            "lin_vel_z_l2": vz_b ** 2,
            "ang_vel_l2": s.qvel[:, 2] ** 2,
            "flat_orientation_l2": sn ** 2,
            "joint_torques_l2": (torques ** 2).sum(axis=1),
            "action_rate_l2": ((actions - last_actions) ** 2).sum(axis=1),
            "feet_air_time": air_reward * (self.command > 0.1),
            "termination": failed.astype(np.float64),
            # not a reward term (no weight): the per-step error that success is judged on
            "lin_vel_x_error": np.abs(s.qvel[:, 0] - self.command),
        }
        return terms, failed
