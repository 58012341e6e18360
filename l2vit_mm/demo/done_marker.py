# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The ``.done`` marker of a generated data set.

A generator writes the marker last, holding the settings it used: a data
set whose marker holds the same settings is finished and left as it is; one
made with other settings is removed before the new one is written, so that
no file of it is left among the new ones.
"""
import json
import os
import os.path as osp
import shutil

MARKER = '.done'


def settings_text(**settings) -> str:
    """The marker's content for these settings (JSON, sorted keys)."""
    return json.dumps(settings, sort_keys=True)


def is_finished(out_dir: str, settings: str) -> bool:
    """Whether ``out_dir`` holds a finished data set of ``settings``.

    Args:
        out_dir (str): The data set's root folder.
        settings (str): The text of :func:`settings_text`.

    Returns:
        bool: True when the marker exists and holds ``settings``.
    """
    marker = osp.join(out_dir, MARKER)
    if not osp.isfile(marker):
        return False
    with open(marker) as f:
        return f.read() == settings


def remove_previous(out_dir: str, paths) -> None:
    """Remove a data set that a generator finished with other settings.

    Only when the marker exists (a folder without one is not known to be
    a generator's): the marker goes first, then ``paths``.

    Args:
        out_dir (str): The data set's root folder.
        paths (Iterable[str]): Files and folders of the data set, relative
            to ``out_dir``.
    """
    marker = osp.join(out_dir, MARKER)
    if not osp.isfile(marker):
        return
    os.remove(marker)
    for path in paths:
        path = osp.join(out_dir, path)
        if osp.isdir(path):
            shutil.rmtree(path)
        elif osp.isfile(path):
            os.remove(path)


def mark_finished(out_dir: str, settings: str) -> None:
    """Write the marker, last.

    Args:
        out_dir (str): The data set's root folder.
        settings (str): The text of :func:`settings_text`.
    """
    with open(osp.join(out_dir, MARKER), 'w') as f:
        f.write(settings)
