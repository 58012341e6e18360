# Copyright (c) l2vit_mm contributors. All rights reserved.
from .head_cut import (class_map_from_names, cut_head, read_class_map,
                       read_class_names, save_class_map)
from .l2vit_checkpoint import (CheckpointError, backbone_weights,
                               check_l2vit_state_dict, check_output_path,
                               convert_l2vit, detect_arch, extract_state_dict,
                               load_checkpoint_file, save_checkpoint_atomic,
                               state_dict_mismatches)

__all__ = [
    'class_map_from_names', 'cut_head', 'read_class_map', 'read_class_names',
    'save_class_map', 'CheckpointError', 'backbone_weights',
    'check_l2vit_state_dict',
    'check_output_path', 'convert_l2vit', 'detect_arch',
    'extract_state_dict', 'load_checkpoint_file', 'save_checkpoint_atomic',
    'state_dict_mismatches'
]
