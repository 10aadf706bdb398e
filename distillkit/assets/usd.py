"""Procedural USD robots and ground for Isaac Lab, written with pxr (UsdGeom + UsdPhysics).

Isaac Lab's stock tasks load their robots and ground plane from NVIDIA's asset bucket at run time.
Offline (CI, air-gapped GPU machines) that fails, so the project authors stand-ins itself, with
the prim, body and joint names the stock task configs select by regex:

- the cart-pole: bodies ``rail`` (welded to the world), ``cart``, ``pole``; joints
  ``slider_to_cart`` (prismatic) and ``cart_to_pole`` (revolute), as ``Isaac-Cartpole`` uses;
- an ANYmal-like quadruped: body ``base``; per leg ``{LF,RF,LH,RH}`` the bodies ``_HIP``,
  ``_THIGH``, ``_SHANK`` and ``_FOOT`` (welded to the shank) and the joints ``_HAA`` (hip
  abduction), ``_HFE`` (hip flexion), ``_KFE`` (knee), as ``Isaac-Velocity-Rough-AnymalD`` uses;
- Isaac Lab's grid ground plane layout: a ``Plane`` collider and an ``Environment/Geometry`` mesh.

Bodies are direct children of the robot prim (the contact sensor selects ``Robot/[^/]*``) and each
joint lives inside its child body. Masses and inertias are set explicitly so nothing depends on
an importer's density defaults. Dimensions are plausible, not ANYbotics' or NVIDIA's numbers.
"""

from __future__ import annotations

from pathlib import Path

from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics

LEGS = ("LF", "RF", "LH", "RH")


def _stage(path: Path, root: str) -> tuple[Usd.Stage, Usd.Prim]:
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    prim = UsdGeom.Xform.Define(stage, f"/{root}").GetPrim()
    stage.SetDefaultPrim(prim)
    return stage, prim


def _box_inertia(mass: float, size: tuple[float, float, float]) -> Gf.Vec3f:
    x, y, z = size
    return Gf.Vec3f(mass * (y * y + z * z) / 12, mass * (x * x + z * z) / 12, mass * (x * x + y * y) / 12)


def _rod_inertia(mass: float, length: float, radius: float) -> Gf.Vec3f:
    """A solid cylinder along z."""
    across = mass * (3 * radius * radius + length * length) / 12
    return Gf.Vec3f(across, across, mass * radius * radius / 2)


def _body(stage: Usd.Stage, path: str, position, mass: float, inertia: Gf.Vec3f,
          center=(0.0, 0.0, 0.0)) -> Usd.Prim:
    body = UsdGeom.Xform.Define(stage, path)
    body.AddTranslateOp().Set(Gf.Vec3d(*position))
    prim = body.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass_api = UsdPhysics.MassAPI.Apply(prim)
    mass_api.CreateMassAttr(mass)
    mass_api.CreateDiagonalInertiaAttr(inertia)
    mass_api.CreateCenterOfMassAttr(Gf.Vec3f(*center))
    return prim


def _collider(geom) -> None:
    UsdPhysics.CollisionAPI.Apply(geom.GetPrim())


def _capsule_z(stage: Usd.Stage, path: str, center, length: float, radius: float) -> None:
    capsule = UsdGeom.Capsule.Define(stage, path)
    capsule.CreateAxisAttr(UsdGeom.Tokens.z)
    capsule.CreateHeightAttr(length)
    capsule.CreateRadiusAttr(radius)
    capsule.AddTranslateOp().Set(Gf.Vec3d(*center))
    _collider(capsule)


def _joint(stage: Usd.Stage, kind, path: str, parent: str | None, child: str, parent_anchor,
           axis: str | None = None, limits: tuple[float, float] | None = None):
    """A joint from ``parent`` (None: the world) to ``child``, anchored at the child's origin,
    which sits at ``parent_anchor`` in the parent's frame (bodies are never rotated here)."""
    joint = kind.Define(stage, path)
    if parent is not None:
        joint.CreateBody0Rel().SetTargets([Sdf.Path(parent)])
    joint.CreateBody1Rel().SetTargets([Sdf.Path(child)])
    joint.CreateLocalPos0Attr(Gf.Vec3f(*parent_anchor))
    joint.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
    joint.CreateLocalRot0Attr(Gf.Quatf(1.0))
    joint.CreateLocalRot1Attr(Gf.Quatf(1.0))
    if axis is not None:
        joint.CreateAxisAttr(axis)
    if limits is not None:
        joint.CreateLowerLimitAttr(limits[0])
        joint.CreateUpperLimitAttr(limits[1])
    return joint


def write_cartpole(path: Path) -> None:
    """A rail welded to the world, a cart sliding along x, a 1 m pole hinged about y.
    Masses follow distillkit's MuJoCo cart-pole (cart 1 kg, pole 0.2 kg)."""
    stage, root = _stage(path, "cartpole")
    UsdPhysics.ArticulationRootAPI.Apply(root)
    r = "/cartpole"
    rail = _body(stage, f"{r}/rail", (0, 0, 0), 5.0, _box_inertia(5.0, (8.0, 0.04, 0.04)))
    UsdGeom.Cube.Define(stage, f"{r}/rail/visual").AddScaleOp().Set(Gf.Vec3f(4.0, 0.02, 0.02))
    _joint(stage, UsdPhysics.FixedJoint, f"{r}/rail/root_joint", None, rail.GetPath(), (0, 0, 0))

    cart = _body(stage, f"{r}/cart", (0, 0, 0), 1.0, _box_inertia(1.0, (0.4, 0.24, 0.16)))
    UsdGeom.Cube.Define(stage, f"{r}/cart/visual").AddScaleOp().Set(Gf.Vec3f(0.2, 0.12, 0.08))
    _joint(stage, UsdPhysics.PrismaticJoint, f"{r}/cart/slider_to_cart", rail.GetPath(), cart.GetPath(),
           (0, 0, 0), axis="X", limits=(-4.0, 4.0))

    pole = _body(stage, f"{r}/pole", (0, 0, 0), 0.2, _rod_inertia(0.2, 1.0, 0.03), center=(0, 0, 0.5))
    visual = UsdGeom.Capsule.Define(stage, f"{r}/pole/visual")
    visual.CreateHeightAttr(1.0)
    visual.CreateRadiusAttr(0.03)
    visual.AddTranslateOp().Set(Gf.Vec3d(0, 0, 0.5))
    _joint(stage, UsdPhysics.RevoluteJoint, f"{r}/pole/cart_to_pole", cart.GetPath(), pole.GetPath(),
           (0, 0, 0), axis="Y")
    stage.GetRootLayer().Save()


# ANYmal-like proportions (m, kg): hips at the base corners, legs hanging straight down at zero angles.
BASE_SIZE = (0.6, 0.3, 0.2)
BASE_MASS = 30.0
HIP_OFFSET = (0.3, 0.1, 0.0)          # HAA axis position in the base frame (signs per leg)
HIP_LENGTH = 0.12                     # HAA -> HFE, outwards along y (thighs clear the base)
THIGH_LENGTH, SHANK_LENGTH = 0.30, 0.33
LEG_RADIUS, FOOT_RADIUS = 0.035, 0.03
HIP_MASS, THIGH_MASS, SHANK_MASS, FOOT_MASS = 2.0, 2.5, 1.0, 0.2


def write_quadruped(path: Path) -> None:
    """A floating-base quadruped with ANYmal's body and joint names (see the module docstring).
    USD joint limits are in degrees."""
    stage, root = _stage(path, "anymal")
    UsdPhysics.ArticulationRootAPI.Apply(root)
    r = "/anymal"
    base = _body(stage, f"{r}/base", (0, 0, 0), BASE_MASS, _box_inertia(BASE_MASS, BASE_SIZE))
    box = UsdGeom.Cube.Define(stage, f"{r}/base/collision")
    box.AddScaleOp().Set(Gf.Vec3f(*(s / 2 for s in BASE_SIZE)))
    _collider(box)

    for leg in LEGS:
        sx = 1.0 if leg[1] == "F" else -1.0
        sy = 1.0 if leg[0] == "L" else -1.0
        hip_at = (sx * HIP_OFFSET[0], sy * HIP_OFFSET[1], HIP_OFFSET[2])
        hip = _body(stage, f"{r}/{leg}_HIP", hip_at, HIP_MASS, _rod_inertia(HIP_MASS, HIP_LENGTH, 0.05))
        _joint(stage, UsdPhysics.RevoluteJoint, f"{r}/{leg}_HIP/{leg}_HAA", base.GetPath(), hip.GetPath(),
               hip_at, axis="X", limits=(-40.0, 40.0))

        thigh_at = (hip_at[0], hip_at[1] + sy * HIP_LENGTH, hip_at[2])
        thigh = _body(stage, f"{r}/{leg}_THIGH", thigh_at, THIGH_MASS,
                      _rod_inertia(THIGH_MASS, THIGH_LENGTH, LEG_RADIUS), center=(0, 0, -THIGH_LENGTH / 2))
        # Colliders stop short of the joints, so neighbours (and the base) never overlap.
        _capsule_z(stage, f"{r}/{leg}_THIGH/collision", (0, 0, -THIGH_LENGTH / 2),
                   THIGH_LENGTH - 2 * LEG_RADIUS - 0.04, LEG_RADIUS)
        _joint(stage, UsdPhysics.RevoluteJoint, f"{r}/{leg}_THIGH/{leg}_HFE", hip.GetPath(), thigh.GetPath(),
               (0, sy * HIP_LENGTH, 0), axis="Y", limits=(-180.0, 180.0))

        shank_at = (thigh_at[0], thigh_at[1], thigh_at[2] - THIGH_LENGTH)
        shank = _body(stage, f"{r}/{leg}_SHANK", shank_at, SHANK_MASS,
                      _rod_inertia(SHANK_MASS, SHANK_LENGTH, LEG_RADIUS * 0.8), center=(0, 0, -SHANK_LENGTH / 2))
        _capsule_z(stage, f"{r}/{leg}_SHANK/collision", (0, 0, -SHANK_LENGTH / 2),
                   SHANK_LENGTH - 2 * LEG_RADIUS - 0.06, LEG_RADIUS * 0.8)
        _joint(stage, UsdPhysics.RevoluteJoint, f"{r}/{leg}_SHANK/{leg}_KFE", thigh.GetPath(), shank.GetPath(),
               (0, 0, -THIGH_LENGTH), axis="Y", limits=(-180.0, 180.0))

        foot_at = (shank_at[0], shank_at[1], shank_at[2] - SHANK_LENGTH)
        r_foot = FOOT_RADIUS
        foot = _body(stage, f"{r}/{leg}_FOOT", foot_at, FOOT_MASS,
                     Gf.Vec3f(*(0.4 * FOOT_MASS * r_foot * r_foot,) * 3))
        sphere = UsdGeom.Sphere.Define(stage, f"{r}/{leg}_FOOT/collision")
        sphere.CreateRadiusAttr(r_foot)
        _collider(sphere)
        _joint(stage, UsdPhysics.FixedJoint, f"{r}/{leg}_FOOT/{leg}_shank_fixed_{leg}_FOOT", shank.GetPath(),
               foot.GetPath(), (0, 0, -SHANK_LENGTH))
    stage.GetRootLayer().Save()


def write_ground_plane(path: Path, half_size: float = 50.0) -> None:
    """Isaac Lab's ground-plane layout: ``Environment`` (scaled by the spawner) holding the
    visual ``Geometry`` mesh with ``primvars:st``, and an infinite ``Plane`` collider."""
    stage, root = _stage(path, "GroundPlane")
    env = UsdGeom.Xform.Define(stage, "/GroundPlane/Environment")
    env.AddScaleOp().Set(Gf.Vec3f(1.0, 1.0, 1.0))
    mesh = UsdGeom.Mesh.Define(stage, "/GroundPlane/Environment/Geometry")
    h = half_size
    mesh.CreatePointsAttr([Gf.Vec3f(-h, -h, 0), Gf.Vec3f(h, -h, 0), Gf.Vec3f(h, h, 0), Gf.Vec3f(-h, h, 0)])
    mesh.CreateFaceVertexCountsAttr([4])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    mesh.CreateNormalsAttr([Gf.Vec3f(0, 0, 1)] * 4)
    UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                            UsdGeom.Tokens.vertex).Set(
        [Gf.Vec2f(0, 0), Gf.Vec2f(1, 0), Gf.Vec2f(1, 1), Gf.Vec2f(0, 1)])
    plane = UsdGeom.Plane.Define(stage, "/GroundPlane/CollisionPlane")
    plane.CreateAxisAttr(UsdGeom.Tokens.z)
    plane.CreateWidthAttr(2 * h)
    plane.CreateLengthAttr(2 * h)
    plane.CreatePurposeAttr(UsdGeom.Tokens.guide)
    _collider(plane)
    stage.GetRootLayer().Save()


#: Where each stock asset lives under an Isaac asset root, and the function that writes ours there.
ASSETS = {
    "Isaac/IsaacLab/Robots/Classic/Cartpole/cartpole.usd": write_cartpole,
    "Isaac/IsaacLab/Robots/ANYbotics/ANYmal-D/anymal_d.usd": write_quadruped,
    "Isaac/IsaacLab/Environments/Grid/default_ground_plane_checker_v1/default_ground_plane.usda": write_ground_plane,
}
