"""scripts/gpu_check.sh (the GPU check users run on a CUDA box) runs end to end; on this CPU machine
with --tiny, so the script cannot rot between the sessions that have a GPU."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_script_runs_every_stage(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--tiny", "--json", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout[-1500:])
    rows = json.loads(out.read_text())["rows"]
    stages = [r["stage"] for r in rows]
    assert any(s.startswith("GRPO: 2 updates") for s in stages) and any(s.startswith("DPO: 2 updates") for s in stages)
    assert sum(s.startswith("synthesis") for s in stages) == 4
    assert all(r["seconds"] >= 0 for r in rows)
