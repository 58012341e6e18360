# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Run the repository's scripts from the demos, one line on failure."""
import os.path as osp
import subprocess
import sys
import time


def run_script(repo, script, *args):
    """Run a script of the repository with this Python, streaming its
    output, as a user would from the repository root.

    Args:
        repo (str): The repository root, the working directory.
        script (str): The script, relative to ``repo`` (e.g.
            ``'tools/train.py'``).
        *args: Its arguments; absolute paths inside ``repo`` are printed
            relative to it.

    Returns:
        float: Wall time in seconds.

    Raises:
        SystemExit: The script failed; the message names it and its exit
            status (its own output, above, says why).
    """
    args = [str(arg) for arg in args]
    shown = [
        osp.relpath(arg, repo)
        if osp.isabs(arg) and arg.startswith(repo + osp.sep) else arg
        for arg in args
    ]
    print('$ python ' + ' '.join([script, *shown]), flush=True)
    start = time.time()
    status = subprocess.run([sys.executable, script, *args],
                            cwd=repo).returncode
    if status:
        sys.exit(f'error: {script} failed (exit status {status}); its '
                 'output is above')
    return time.time() - start
