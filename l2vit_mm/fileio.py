# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Write output files whole or not at all, and check them beforehand."""
import errno
import os
import os.path as osp
import tempfile


def _umask():
    """Return the process umask without changing it, where Linux tells it.

    Returns:
        int: The umask.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere only setting it reads it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path, folder=False):
    """Check, without leaving anything behind, that ``path`` can be
    written: a file (:func:`write_atomic` writes it) is not a folder, a
    folder is not a file, and a file can be created in the nearest existing
    folder of either (missing folders are created on writing).

    Args:
        path (str): The file or folder to write.
        folder (bool): Whether ``path`` is a folder to write files in.
            Defaults to False.

    Raises:
        OSError: Why ``path`` cannot be written (``Is a directory``,
            ``Not a directory``, ``Permission denied``, ...), naming the
            path that is in the way.
    """
    path = osp.abspath(path)
    if not folder and osp.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    existing = path if folder else osp.dirname(path)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                 existing)
    try:
        # An unnamed file (O_TMPFILE where the system has it): asks the file
        # system itself, which permission bits alone do not tell for root,
        # read-only mounts or /proc.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OSError(error.errno, error.strerror, existing) from None


def unwritable_reason(path, folder=False):
    """Why :func:`check_writable` refuses ``path``, or None.

    Args:
        path (str): The file or folder to write.
        folder (bool): Whether ``path`` is a folder. Defaults to False.

    Returns:
        str | None: The system's reason, followed by the path in the way
        when that is not ``path`` itself (``'Not a directory: /a/file'``);
        None when ``path`` can be written.
    """
    try:
        check_writable(path, folder)
    except OSError as error:
        if error.filename == osp.abspath(path):
            return error.strerror
        return f'{error.strerror}: {error.filename}'
    return None


def write_atomic(path, write):
    """Write a temporary file beside ``path``, then rename it to ``path``.

    A failure leaves no partial file at ``path``. Missing folders of
    ``path`` are created (and removed again if the write fails), and the
    file gets the permissions that a plain ``open(path, 'w')`` gives
    (``0o666`` less the umask).

    Args:
        path (str): The destination file.
        write (Callable[[str], None]): Writes the content to the path it
            is given (a temporary name ending in ``.tmp``).

    Raises:
        OSError: ``path`` cannot be written (see :func:`check_writable`),
            or ``write`` failed to write.
    """
    check_writable(path)
    folder = osp.dirname(osp.abspath(path))
    created = _missing_folders(folder)
    os.makedirs(folder, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            os.remove(tmp)
            raise
    except BaseException:
        for missing in created:
            os.rmdir(missing)
        raise


def _missing_folders(folder):
    """The folders that ``os.makedirs(folder)`` would create, deepest
    first."""
    missing = []
    while not osp.isdir(folder):
        missing.append(folder)
        parent = osp.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing
