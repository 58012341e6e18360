# Copyright (c) l2vit_mm contributors. All rights reserved.
from ..fileio import check_writable, unwritable_reason, write_atomic
from .cli_args import (CfgOptionsAction, add_runner_args, bad_input_exits,
                       cfg_option, device_name, parse_runner_args,
                       positive_int)
from .data_checks import check_data_paths
from .model_checks import (check_backbone, check_test_checkpoint,
                           find_backbone_model, local_checkpoint)
from .runner_setup import build_runner, merge_test_args, merge_train_args
from .task_scope import get_task_scope

__all__ = [
    'CfgOptionsAction', 'add_runner_args', 'bad_input_exits',
    'build_runner', 'cfg_option', 'check_backbone', 'check_data_paths',
    'check_test_checkpoint', 'check_writable', 'device_name',
    'find_backbone_model', 'get_task_scope', 'local_checkpoint',
    'merge_test_args', 'merge_train_args', 'parse_runner_args',
    'positive_int', 'unwritable_reason', 'write_atomic'
]
