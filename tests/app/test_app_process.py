"""The TUI's process never imports torch, even after running a snippet; its first frame waits for
no heavy import (sqlmodel is imported by a worker after the first frame)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def test_app_process_never_imports_torch(tmp_path, deck):
    from helpers import write_concept

    write_concept(
        deck,
        "numpy-note",
        extra="snippet:\n  requires: [numpy]\n  code: |\n    import numpy as np\n"
        "    assert np.arange(3).sum() == 3\n    print('ran')\n",
    )
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
        from pathlib import Path
        from helpers import settle
        from kb.config import Settings
        from app.app import KBApp

        async def main():
            app = KBApp(Settings(home=Path({str(tmp_path / "home")!r}), bundled_content=Path({str(deck)!r})),
                        watch=False)
            first_frame_modules = set(sys.modules)
            async with app.run_test(size=(100, 30)) as pilot:
                await settle(app, pilot)
                await pilot.press("enter")
                await settle(app, pilot)
                await pilot.press("r")
                await settle(app, pilot)
                log = app.screen.query_one("#output")
                ran = any("ran" in line.text for line in log.lines)
            print(json.dumps({{"ran": ran, "modules": sorted(sys.modules), "early": sorted(first_frame_modules)}}))

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ran"], "the snippet did not run"
    assert "torch" not in result["modules"] and "numpy" not in result["modules"]
    # Before the app runs, only the UI is imported: not sqlmodel, sqlalchemy or pydantic.
    assert not {"sqlmodel", "sqlalchemy"} & set(result["early"])
