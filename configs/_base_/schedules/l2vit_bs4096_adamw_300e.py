# The authors' ImageNet-1K schedule: AdamW 4e-3 for a total batch of 4096,
# 20 warm-up epochs from 0, cosine to 1e-6 over 300 epochs, EMA 0.9999.
# mmpretrain's Swin schedule gives the rest: AdamW with weight decay 0.05,
# eps 1e-8, betas (0.9, 0.999), 300 epochs validated after each.
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py']

optim_wrapper = dict(
    optimizer=dict(lr=4e-3),
    # The authors decay neither 1-D parameters (norms, BN) nor biases; the
    # per-head linear-attention temperature (3-D) is decayed.
    paramwise_cfg=dict(
        flat_decay_mult=0.0, bias_decay_mult=0.0, _delete_=True),
    accumulative_counts=4,
    clip_grad=None,
)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=True,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=20,
        end=300,
        convert_to_iter_based=True),
]

# EMA 0.9999 of the weights, updated once per optimizer step (every 4
# iterations) as the authors. Validation evaluates both, as the authors:
# the EMA weights (the metrics' own names, which `save_best` reads) and the
# trained ones (`*_origin`, e.g. `val/accuracy/top1_origin`); the checkpoint's
# `state_dict` holds the EMA weights, which `tools/test.py` tests. The EMA
# averages the BatchNorm statistics too, as timm's ModelEma in the authors'
# ConvNeXt-based training code (mmengine's default copies the live ones).
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, interval=4,
         priority='ABOVE_NORMAL', evaluate_on_origin=True,
         update_buffers=True)
]

# Total batch of the recipe; `--auto-scale-lr` scales lr 4e-3 linearly.
auto_scale_lr = dict(base_batch_size=4096)
