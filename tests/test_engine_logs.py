"""Engine logs: what the GPU engines print from Python or C goes to a file under runs/logs/, and a
notebook shows one line saying where."""

import os
import subprocess
import sys

import pytest

from distillkit.envs import logs


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "LOG_DIR", tmp_path)
    monkeypatch.setattr(logs, "_files", {})
    monkeypatch.delenv("DISTILLKIT_ENGINE_LOGS", raising=False)
    return tmp_path


def test_what_python_and_c_print_inside_goes_to_the_engines_file(log_dir, capfd):
    for _ in range(2):
        with logs.engine_logs("mujoco_warp"):
            print("from python")
            os.write(2, b"from C, on file descriptor 2\n")
    out, err = capfd.readouterr()
    assert "from python" not in out and "from C" not in err
    assert out.count("MuJoCo Warp's engine logs") == 1, "one line says where, once"
    (path,) = log_dir.glob("mujoco_warp_*.log")
    assert path.read_text().count("from C, on file descriptor 2") == 2
    print("after")
    assert capfd.readouterr().out == "after\n", "the console is given back"


def test_the_console_keeps_it_when_asked(log_dir, capfd, monkeypatch):
    monkeypatch.setenv("DISTILLKIT_ENGINE_LOGS", "console")
    with logs.engine_logs("isaaclab"):
        os.write(2, b"kept\n")
    assert "kept" in capfd.readouterr().err and not list(log_dir.iterdir())


def test_an_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match=r"engine logs exist for \['isaaclab', 'mujoco_warp'\], not 'mujoco'"):
        logs.log_file("mujoco")


@pytest.mark.slow
def test_warp_on_a_machine_without_cuda_prints_no_red_warning(tmp_path):
    """Plain ``warp.init()`` warns on stderr, from C, where no CUDA driver loads (the bad case); the
    MuJoCo Warp engine starts Warp with that warning in its log file."""
    pytest.importorskip("mujoco_warp")
    run = lambda code: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                                      env={**os.environ, "DISTILLKIT_ENGINE_LOGS": ""})
    plain = run("import warp; warp.init(); print(warp.is_cuda_available())")
    if plain.stdout.strip().endswith("True"):
        pytest.skip("this machine has CUDA: Warp has nothing to warn about")
    assert "Could not find or load the NVIDIA CUDA driver" in plain.stderr
    engine = run("import distillkit.envs.mujoco_warp")
    assert engine.returncode == 0, engine.stderr
    assert "CUDA" not in engine.stderr and "MuJoCo Warp's engine logs" in engine.stdout
