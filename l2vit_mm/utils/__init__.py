# Copyright (c) l2vit_mm contributors. All rights reserved.
from .runner_setup import (TASK_SCOPES, build_runner, check_data_paths,
                           get_task_scope, merge_test_args, merge_train_args)

__all__ = [
    'TASK_SCOPES', 'build_runner', 'check_data_paths', 'get_task_scope',
    'merge_test_args', 'merge_train_args'
]
